// IAM on every call of the local run: a policy line taken out of the synthesized batch or ingest stack
// (in a copy of cdktf.out, as a deploy of that policy would be) makes the local run fail exactly where
// AWS would, with the error AWS returns; nothing the denied call would have done happens.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { batchResults, demo, openSession, outcomes, sampleFiles, Session, synthesize, uploadToSftp } from '../scripts/local-pipeline';
import type { Json } from '../tools/local-sfn/json';
import { readStack } from '../tools/tf-json';
import { makeImagesDir } from './stacks/synth';

jest.setTimeout(300_000);

let base: string;
const made: string[] = [];
beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-iam-'));
  made.push(base);
  synthesize(base, makeImagesDir());
});
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A copy of the synthesized app in which `action` is taken out of the policy document `doc` of `stack`
 * (a statement left with no action goes). Fails if the policy never granted it: the test would prove nothing.
 */
function withoutAction(stack: string, doc: string, action: string): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-iam-edit-'));
  made.push(copy);
  fs.cpSync(base, copy, { recursive: true });
  const file = path.join(copy, 'stacks', stack, 'cdk.tf.json');
  const json = readStack(copy, stack).json as any;
  const document = json.data.aws_iam_policy_document[doc];
  const before = JSON.stringify(document.statement);
  document.statement = document.statement
    .map((st: { actions?: string[] }) => ({ ...st, actions: st.actions?.filter((a) => a !== action) }))
    .filter((st: { actions?: string[] }) => !st.actions || st.actions.length > 0);
  if (JSON.stringify(document.statement) === before) throw new Error(`${stack}/${doc} grants no ${action}`);
  fs.writeFileSync(file, JSON.stringify(json));
  return copy;
}

/** Everything an execution reports (output, error, cause, batch results in S3), as one text. */
async function report(session: Session, run: { output?: Json; error?: string; cause?: string }): Promise<string> {
  return JSON.stringify([run.error, run.cause, run.output, await batchResults(session.world, run.output)]);
}

const customer = () => fs.readFileSync(sampleFiles().find((s) => s.name === 'customer.xml')!.source);

async function withSession<T>(outdir: string, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession(outdir);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

describe.each([
  ['ecs:RunTask', 'the state machine may not run the task definition'],
  ['ecs:TagResource', "tag-on-create: PropagateTags copies the task definition's tags onto the new task"],
  ['iam:PassRole', 'RunTask passes the task and execution roles'],
])('GIVEN the state machine role without %s (%s)', (action) => {
  test('WHEN keys are converted THEN RunTask fails with ECS.AccessDeniedException naming the action, and no task starts', async () => {
    await withSession(withoutAction('batch', 'state-machine-role-policy-doc', action), async (session) => {
      const key = 'incoming/iam/a.xml';
      await session.world.s3.put(session.world.bucket, key, customer());
      const run = await session.pipeline.execute([key], 'denied');
      const text = await report(session, run);
      expect(text).toContain('ECS.AccessDeniedException');
      expect(text).toContain(`is not authorized to perform: ${action} on resource`);
      expect(session.world.tasks).toEqual([]);
      expect(await session.world.s3.keys(session.world.bucket, 'json/')).toEqual([]);
      expect(session.world.iam.log.filter((d) => d.decision !== 'Allowed').map((d) => d.action)).toEqual(expect.arrayContaining([action]));
    });
  });
});

test("GIVEN the converter's task role without s3:GetObject WHEN keys are converted THEN the converter's reads are denied by S3 and each key is reported failed with AccessDenied", async () => {
  await withSession(withoutAction('batch', 'task-role-policy-doc', 's3:GetObject'), async (session) => {
    const keys = ['incoming/iam/a.xml', 'incoming/iam/b.xml'];
    for (const k of keys) await session.world.s3.put(session.world.bucket, k, customer());
    const run = await session.pipeline.execute(keys, 'converter-denied');
    const converters = session.world.tasks.filter((t) => t.container === 'converter');
    expect(converters.length).toBeGreaterThan(0);
    expect(converters.every((t) => t.exitCode !== 0 && /AccessDenied/.test(t.stderr))).toBe(true);
    const result = await outcomes(session.world, run.output);
    expect(result.map((o) => [o.key, o.status])).toEqual(keys.map((k) => [k, 'failed']));
    expect(result.every((o) => /AccessDenied/.test(o.error ?? ''))).toBe(true);
    expect(await session.world.s3.keys(session.world.bucket, 'json/')).toEqual([]);
    const denied = session.world.iam.log.filter((d) => d.role === 'batch/task-role' && d.decision !== 'Allowed');
    expect(denied.map((d) => [d.action, d.resource.replace(/^arn:aws:s3:::[^/]+\//, '')])).toEqual(
      expect.arrayContaining(keys.map((k) => ['s3:GetObject', k])),
    );
  });
});

test("GIVEN the lister's task role without s3:PutObject WHEN the schedule runs THEN the lister's uploads are denied by S3, nothing lands, and the execution fails", async () => {
  await withSession(withoutAction('ingest', 'task-role-policy-doc', 's3:PutObject'), async (session) => {
    uploadToSftp(session.world.sftp, sampleFiles().slice(0, 2));
    const run = await session.pipeline.execute({ ingest: {} }, 'lister-denied');
    const [lister] = session.world.tasks.filter((t) => t.container === 'sftp-lister');
    expect(lister.exitCode).not.toBe(0);
    expect(lister.stdout + lister.stderr).toMatch(/AccessDenied/);
    expect(run.status).toBe('FAILED');
    expect(await session.world.s3.keys(session.world.bucket, 'incoming/')).toEqual([]);
    expect(session.world.iam.log.some((d) => d.role === 'ingest/task-role' && d.action === 's3:PutObject' && d.decision !== 'Allowed')).toBe(true);
  });
});

test('GIVEN one policy line removed (ecs:TagResource) WHEN npm run local runs THEN it reports FAILED', async () => {
  const lines: string[] = [];
  expect(await demo(withoutAction('batch', 'state-machine-role-policy-doc', 'ecs:TagResource'), (l) => lines.push(l))).toBe(false);
  expect(lines.join('\n')).toMatch(/FAILED/);
});
