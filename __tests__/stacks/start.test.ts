// `npm start` (scripts/synth-and-validate.ts) on the real app: every stack synthesized, every stack
// without the docker provider validated offline by terraform, one line per stack.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { synthAndValidate } from '../../scripts/synth-and-validate';
import { listStacks } from '../../tools/tf-json';

describe('npm start', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'h1-start-'));
  const saved = { CDKTF_OUTDIR: process.env.CDKTF_OUTDIR, PIPELINE_AZ_COUNT: process.env.PIPELINE_AZ_COUNT };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('GIVEN the repository WHEN synthesized and validated THEN each stack has one line: resources and valid (docker stack: not validated)', async () => {
    process.env.CDKTF_OUTDIR = outdir;
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await synthAndValidate(
      (l) => lines.push(l),
      (l) => errors.push(l),
    );
    expect({ code, errors }).toEqual({ code: 0, errors: [] });
    expect(lines[0]).toMatch(/^synthesized \d+ stacks into .* in \d+\.\d\d s$/);
    const names = listStacks(outdir).map((s) => s.name);
    const stackLines = lines.filter((l) => /resources/.test(l));
    expect(stackLines).toHaveLength(names.length);
    for (const name of names) {
      const line = stackLines.find((l) => l.startsWith(`${name} `));
      if (name === 'images') expect(line).toMatch(/^images +\d+ resources {2}not validated: uses the docker provider/);
      else expect(line).toMatch(new RegExp(`^${name} +[1-9]\\d* resources {2}valid$`));
    }
  }, 300_000);

  test('GIVEN an invalid setting WHEN started THEN exit code 2 and the message names the setting, nothing validated', async () => {
    process.env.CDKTF_OUTDIR = outdir;
    process.env.PIPELINE_AZ_COUNT = '0';
    const lines: string[] = [];
    const errors: string[] = [];
    expect(
      await synthAndValidate(
        (l) => lines.push(l),
        (l) => errors.push(l),
      ),
    ).toBe(2);
    expect(errors).toEqual([
      'Invalid configuration: azCount (env PIPELINE_AZ_COUNT, context "azCount"): must be at least 2 (tasks and endpoints span two or more AZs), got 0',
    ]);
    expect(lines).toEqual([]);
  });
});
