// Scale in the strict local run (issue 15): a scheduled run of 5,000 files with 100-character keys at
// the default settings (up to 10,000 files per run, batch manifests of at most 200 files: at most 100
// converter tasks per 10,000 small files; the 10,000-file run takes over 15 minutes on a loaded 2-core
// machine, so `npm run bench:scale` runs it on the same runner), and the lab's contract (a JSON array of keys) at the largest input the
// state machine accepts, each completing with every key accounted for in S3 and none in the execution's
// payload; one past the largest is refused before any task starts. Every state's input
// and output is held to Step Functions' 256 KiB, every call authorized as its role, each converter a
// real process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { batchResults, openSession, outcomes, Session, synthesize } from '../scripts/local-pipeline';
import { byteSize, MAX_PAYLOAD_BYTES } from '../tools/local-sfn/limits';
import { MAX_KEYS_PER_EXECUTION, TOO_MANY_KEYS } from '../stacks/state-machine';
import { makeImagesDir } from './stacks/synth';

jest.setTimeout(900_000);

const FILES = 5_000;
/** Issue 15: at most 100 converter tasks per 10,000 small files. */
const MAX_TASKS_PER_10K = 100;
const KEY_CHARS = 100;
const made: string[] = [];
const tmp = (prefix: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
};
let session: Session;

beforeAll(async () => {
  const outdir = tmp('lr-scale-');
  // The default settings: the lister takes 10,000 files per run and writes batches of at most 200.
  synthesize(outdir, makeImagesDir());
  session = await openSession(outdir);
});
afterAll(async () => {
  await session?.close();
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

test(`GIVEN ${FILES} files on SFTP whose keys are ${KEY_CHARS} characters WHEN the schedule runs THEN every file is ingested and converted, and every state stayed within 256 KiB`, async () => {
  const { world } = session;
  const names = Array.from(
    { length: FILES },
    (_, i) => `f-${String(i).padStart(5, '0')}-`.padEnd(KEY_CHARS - 'incoming/'.length - '.xml'.length, 'x') + '.xml',
  );
  const when = new Date(Date.now() - 3600_000);
  for (const [i, name] of names.entries()) {
    const file = path.join(world.sftp.root, name);
    fs.writeFileSync(file, `<record><id>${i}</id></record>\n`);
    fs.utimesSync(file, when, when);
  }
  const keys = names.map((n) => `incoming/${n}`);
  expect(keys.every((k) => k.length === KEY_CHARS)).toBe(true);

  const started = Date.now();
  const run = await session.pipeline.execute({ ingest: {} }, 'scheduled-5000');
  const seconds = (Date.now() - started) / 1000;
  expect({ status: run.status, error: run.error, cause: run.cause?.slice(0, 500) }).toEqual({ status: 'SUCCEEDED', error: undefined, cause: undefined });
  // The output is a location and counts, not per-key results.
  expect(byteSize(run.output)).toBeLessThan(4096);
  const result = await outcomes(world, run.output);
  expect(result.length).toBe(FILES);
  expect(result.filter((o) => o.status !== 'converted')).toEqual([]);
  expect(result.map((o) => o.key)).toEqual([...keys].sort((a, b) => a.localeCompare(b)));
  const outputs = new Set(await world.s3.keys(world.bucket, 'json/incoming/'));
  expect(keys.filter((k) => !outputs.has(`json/${k}.json`))).toEqual([]);
  const converters = world.tasks.filter((t) => t.execution === run.arn && t.container === 'converter');
  // One task per batch manifest of the lister's index; keys reach them only through S3.
  const index = JSON.parse((await world.s3.get(world.bucket, 'manifests/scheduled-5000/batches.json')).toString()) as { manifest: string; files: number }[];
  expect(index.reduce((n, b) => n + b.files, 0)).toBe(FILES);
  expect(converters.map((t) => t.overrides.S3PATHS_MANIFEST).sort()).toEqual(index.map((b) => b.manifest).sort());
  expect(converters.every((t) => t.overrides.S3PATHS === undefined && t.exitCode === 0)).toBe(true);
  expect(converters.length).toBeLessThanOrEqual((MAX_TASKS_PER_10K * FILES) / 10_000);
  console.log(
    `${FILES} files, ${KEY_CHARS}-character keys: ${seconds.toFixed(0)} s, ${converters.length} converter tasks, ${world.iam.log.length} calls authorized`,
  );
});

test("GIVEN the lab's contract at the largest input accepted (the most keys, each as long as the 256 KiB input allows) WHEN executed THEN every key is converted; one key more, or one character more, is refused before any task", async () => {
  const { world } = session;
  // n keys of length L are a JSON array of n * (L + 3) + 1 bytes (quotes, commas, brackets).
  const n = MAX_KEYS_PER_EXECUTION;
  const length = Math.floor((MAX_PAYLOAD_BYTES - 1) / n) - 3;
  const keyOf = (i: number, len: number) => `incoming/lab/k-${String(i).padStart(5, '0')}-`.padEnd(len - '.xml'.length, 'y') + '.xml';
  const keys = Array.from({ length: n }, (_, i) => keyOf(i, length));
  expect(byteSize(keys)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
  expect(byteSize(Array.from({ length: n }, (_, i) => keyOf(i, length + 1)))).toBeGreaterThan(MAX_PAYLOAD_BYTES);
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < n; i += 8) await world.s3.put(world.bucket, keys[i], `<lab><n>${i}</n></lab>\n`);
    }),
  );

  const tooMany = await session.pipeline.execute([...keys.slice(0, n - 1), 'incoming/lab/a.xml', 'incoming/lab/b.xml'], 'lab-too-many');
  expect(tooMany).toMatchObject({ status: 'FAILED', error: TOO_MANY_KEYS });
  await expect(
    session.pipeline.execute(
      Array.from({ length: n }, (_, i) => keyOf(i, length + 1)),
      'lab-too-long',
    ),
  ).rejects.toMatchObject({ name: 'InvalidExecutionInput' });
  expect(world.tasks.filter((t) => t.execution.endsWith(':lab-too-many') || t.execution.endsWith(':lab-too-long'))).toEqual([]);

  const started = Date.now();
  const run = await session.pipeline.execute(keys, 'lab-largest');
  const seconds = (Date.now() - started) / 1000;
  expect({ status: run.status, error: run.error, cause: run.cause?.slice(0, 500) }).toEqual({ status: 'SUCCEEDED', error: undefined, cause: undefined });
  const result = await outcomes(world, run.output);
  expect(result.filter((o) => o.status !== 'converted')).toEqual([]);
  expect(result.map((o) => o.key)).toEqual([...keys].sort((a, b) => a.localeCompare(b)));
  expect((await batchResults(world, run.output)).length).toBe(Math.ceil(n / 10));
  console.log(`lab contract: ${n} keys of ${length} characters (${byteSize(keys)} bytes of input): ${seconds.toFixed(0)} s`);
});
