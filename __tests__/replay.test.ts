// npm run replay: the start-execution command for an execution's failed keys, and its refusals.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { replayCommand } from '../scripts/replay';

describe('npm run replay', () => {
  test.each([
    [
      'an execution ARN (its state machine taken from it)',
      'arn:aws:states:eu-west-1:123456789012:execution:xmlpipe-dev-pipeline:scheduled-7',
      undefined,
      `aws stepfunctions start-execution --state-machine-arn 'arn:aws:states:eu-west-1:123456789012:stateMachine:xmlpipe-dev-pipeline' --input '{"replay":"scheduled-7"}'`,
    ],
    [
      'a name, with STATE_MACHINE_ARN',
      'run-1',
      'arn:aws:states:eu-west-1:123456789012:stateMachine:m',
      `aws stepfunctions start-execution --state-machine-arn 'arn:aws:states:eu-west-1:123456789012:stateMachine:m' --input '{"replay":"run-1"}'`,
    ],
    [
      "a name alone (the ARN from the batch stack's output)",
      "it's-1",
      undefined,
      `aws stepfunctions start-execution --state-machine-arn "$(terraform -chdir=cdktf.out/stacks/batch output -raw state_machine_arn)" --input '{"replay":"it'\\''s-1"}'`,
    ],
  ])('GIVEN %s THEN the exact command', (_what, arg, machine, expected) => {
    expect(replayCommand(arg, machine)).toBe(expected);
  });

  test('GIVEN a name with a single quote THEN the printed input is that name once the shell has read it', () => {
    const command = replayCommand("it's-1", 'arn:aws:states:eu-west-1:123456789012:stateMachine:m');
    const input = execFileSync('bash', ['-c', `set -- ${command.split(' --input ')[1]}; printf %s "$1"`]).toString();
    expect(JSON.parse(input)).toEqual({ replay: "it's-1" });
  });

  test.each([
    [
      'a child execution of a Distributed Map',
      'arn:aws:states:eu-west-1:123456789012:execution:m/ConvertKeys:0b5c',
      /not the ARN of one of the state machine's executions .*replay that/,
    ],
    ['a name with a space', 'my run', /Invalid Name: 'my run'/],
    ['a name over 80 characters', 'x'.repeat(81), /Invalid Name/],
  ])('GIVEN %s THEN it is refused naming it', (_what, arg, message) => {
    expect(() => replayCommand(arg)).toThrow(message);
  });

  test('GIVEN no argument or a bad one WHEN run THEN usage or the reason on stderr, exit 2; --help exits 0', () => {
    // The script as npm runs it (compiled), bundled here with esbuild.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-'));
    const script = path.join(dir, 'replay.js');
    buildSync({ entryPoints: [path.resolve(__dirname, '..', 'scripts', 'replay.ts')], bundle: true, platform: 'node', outfile: script, logLevel: 'silent' });
    const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
    const none = run();
    expect([none.status, none.stdout, none.stderr]).toEqual([2, '', expect.stringMatching(/^usage: npm run replay -- <execution ARN or name>/)]);
    const bad = run('a b');
    expect([bad.status, bad.stderr.trim()]).toEqual([2, expect.stringMatching(/^npm run replay: Invalid Name: 'a b'/)]);
    expect(run('--help').status).toBe(0);
    const ok = run('arn:aws:states:eu-west-1:123456789012:execution:m:run-9');
    expect([ok.status, ok.stdout]).toEqual([
      0,
      `aws stepfunctions start-execution --state-machine-arn 'arn:aws:states:eu-west-1:123456789012:stateMachine:m' --input '{"replay":"run-9"}'\n`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
