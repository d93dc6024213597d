// `terraform test` in apply mode, with a mocked aws provider, of every AWS stack the app synthesizes
// (scripts/terraform-test.ts): realistic cross-stack values through terraform_remote_state, the
// provider's validators on every known value, IAM policies rendered by the real provider. And the cases
// that prove it can fail: an output the producer does not export, a cross-stack ARN that is not one, a
// name where the provider wants an ARN.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readApp as readSynthesized, type SynthesizedApp } from '../../tools/tf-json';
import { danglingRemoteReferences, remoteReferences, StackTestResult, testStacks } from '../../scripts/terraform-test';
import { findTerraform } from '../../scripts/terraform';
import { synthesize, TEST_PUBLIC_KEY } from './synth';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tftest-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const app: SynthesizedApp = readSynthesized(synthesize().outdir);

/** A copy of the app with one stack's JSON changed (the synthesized files are left alone). */
function withStack(name: string, change: (json: any) => void): SynthesizedApp {
  const json = structuredClone(app.stacks[name]);
  change(json);
  return { ...app, stacks: { ...app.stacks, [name]: json } };
}

const summary = (results: StackTestResult[]) => results.map((r) => ({ stack: r.stack, status: r.status, reason: r.reason }));

test('GIVEN terraform 1.11 WHEN looked up THEN it is on PATH (the mocked-provider tests need it)', () => {
  expect(findTerraform()).toBeDefined();
});

test('GIVEN the synthesized app WHEN each AWS stack is tested with the mocked provider THEN every apply succeeds (docker stack skipped)', async () => {
  const results = await testStacks(app, path.join(work, 'all'));
  const expected = Object.keys(app.stacks)
    .filter((s) => app.stacks[s].provider?.aws)
    .map((stack) =>
      app.stacks[stack].provider?.docker
        ? { stack, status: 'skipped', reason: expect.stringMatching(/docker provider/) }
        : { stack, status: 'passed', reason: undefined },
    );
  expect(summary(results)).toEqual(expected);
  // The five AWS stacks of the pipeline are among them, whatever else the app gains.
  expect(
    results
      .filter((r) => r.status === 'passed')
      .map((r) => r.stack)
      .sort(),
  ).toEqual(expect.arrayContaining(['batch', 'cluster', 'ingest', 'network', 'sftp']));
  // Apply ran (not only plan) and the IAM Resource assertions were evaluated where there are policies.
  for (const r of results.filter((x) => x.status === 'passed')) expect(r.log).toMatch(/run "apply"\.\.\. pass/);
}, 900_000);

test('GIVEN the other settings that add resources (NAT, 3 AZs, ARM64, user key, allowed CIDRs, S3 state; external SFTP) WHEN tested with the mocked provider THEN every apply succeeds', async () => {
  const widest = readSynthesized(
    synthesize({
      overrides: {
        natEnabled: true,
        azCount: 3,
        cpuArchitecture: 'ARM64',
        sftpPublicKeys: TEST_PUBLIC_KEY,
        sftpAllowedCidrs: '192.168.10.0/24',
        stateBucket: 'example-terraform-state',
        logRetentionDays: 90,
      },
    }).outdir,
  );
  const external = readSynthesized(
    synthesize({
      overrides: {
        sftpSource: 'external',
        natEnabled: true,
        sftpHost: 'sftp.partner.example.com',
        sftpPort: 2222,
        sftpHostKeyFingerprints: `SHA256:${'x'.repeat(43)}`,
      },
    }).outdir,
  );
  // What these settings add is really there (else this test would repeat the default one).
  expect(Object.keys(widest.stacks.network.resource ?? {})).toEqual(expect.arrayContaining(['aws_nat_gateway', 'aws_eip', 'aws_internet_gateway']));
  expect(Object.keys(widest.stacks.sftp.resource ?? {})).toContain('aws_transfer_ssh_key');
  expect(Object.keys(external.stacks.sftp.resource ?? {})).not.toContain('aws_transfer_server');
  // Only the stacks these settings change materially (the cluster stack only gets another retention,
  // the external sftp stack only its secret), in two lanes of about equal length (the suite's budget is
  // two terraform runs at a time).
  const [first, second] = await Promise.all([
    testStacks(widest, path.join(work, 'widest'), { stacks: ['network', 'sftp', 'batch'], concurrency: 1 }),
    (async () => [
      ...(await testStacks(widest, path.join(work, 'widest'), { stacks: ['ingest'], concurrency: 1 })),
      ...(await testStacks(external, path.join(work, 'external'), { stacks: ['ingest'], concurrency: 1 })),
    ])(),
  ]);
  expect(summary([...first, ...second])).toEqual(
    ['network', 'sftp', 'batch', 'ingest', 'ingest'].map((stack) => ({ stack, status: 'passed', reason: undefined })),
  );
}, 900_000);

test('GIVEN the app WHEN its cross-stack references are listed THEN each names an output its producer exports', () => {
  const refs = remoteReferences(app);
  expect(refs.length).toBeGreaterThan(0);
  expect([...new Set(refs.map((r) => r.consumer))]).toEqual(expect.arrayContaining(['sftp', 'ingest', 'batch']));
  expect(danglingRemoteReferences(app)).toEqual([]);
});

test('GIVEN a stack reading an output its producer does not export WHEN checked THEN the reference is named (consumer, place, output, producer)', () => {
  const broken = withStack('batch', (json) => {
    const text = JSON.stringify(json).replace(
      /(terraform_remote_state\.cross-stack-reference-input-cluster\.outputs\.)cross-stack-output-aws_ecs_clusterclusterarn/,
      '$1cluster_arn_typo',
    );
    Object.assign(json, JSON.parse(text));
  });
  expect(danglingRemoteReferences(broken)).toEqual([
    expect.stringMatching(/^stack batch \((resource|data)\.[^)]+\) reads output cluster_arn_typo of stack cluster, which has no such output$/),
  ]);
});

describe('GIVEN deliberate defects WHEN the stacks are tested THEN each run fails, naming them', () => {
  let ingest: StackTestResult;
  let sftp: StackTestResult;
  let batch: StackTestResult;
  let xmlBucketName = '';
  let oversizedRole = '';
  const missing = 'cross-stack-output-aws_vpcvpcid';

  // Two lanes, as the suite's budget is two terraform runs at a time. Plan-time errors stop the
  // resources that depend on them, so each defect has its own run.
  beforeAll(async () => {
    [[ingest, sftp], [batch]] = await Promise.all([
      // ingest also gets one more statement in a role's inline policy, over IAM's size quota for a role.
      testStacks(
        withStack('ingest', (json) => {
          const rolePolicy = Object.values(json.resource.aws_iam_role_policy)[0] as { policy: string; role: string };
          const doc = /^\$\{data\.aws_iam_policy_document\.([\w-]+)\.json\}$/.exec(rolePolicy.policy)![1];
          oversizedRole = /^\$\{aws_iam_role\.([\w-]+)\.(id|name)\}$/.exec(rolePolicy.role)![1];
          json.data.aws_iam_policy_document[doc].statement.push({
            effect: 'Allow',
            actions: ['s3:GetObject'],
            resources: Array.from({ length: 300 }, (_, i) => `arn:aws:s3:::partner-exchange/partner-${i}/*`),
          });
        }),
        path.join(work, 'bad-remote'),
        {
          stacks: ['ingest', 'sftp'],
          concurrency: 1,
          remoteOutputs: (consumer, producer, outputs) => {
            // ingest: the XML bucket's NAME where its ARN belongs, as a wrongly wired output would give it.
            if (consumer === 'ingest' && producer === 'cluster') {
              const key = Object.keys(outputs).find((k) => /^cross-stack-output-aws_s3_bucketxml-bucket.*arn$/.test(k))!;
              xmlBucketName = String(outputs[key]).replace(/^arn:aws:s3:::/, '');
              return { ...outputs, [key]: xmlBucketName };
            }
            // sftp: the network stack no longer exports the VPC id the SFTP server is placed in.
            if (consumer === 'sftp' && producer === 'network') {
              const { [missing]: _gone, ...rest } = outputs;
              return rest;
            }
            return outputs;
          },
        },
      ),
      // batch: the task definition names its execution role by name where the provider wants an ARN.
      testStacks(
        withStack('batch', (json) => {
          const task = Object.values(json.resource.aws_ecs_task_definition)[0] as { execution_role_arn: string };
          task.execution_role_arn = task.execution_role_arn.replace(/\.arn\}$/, '.name}');
        }),
        path.join(work, 'bad-batch'),
        { stacks: ['batch'], concurrency: 1 },
      ),
    ]);
  }, 900_000);

  test('a cross-stack value that is not an ARN (the bucket name for its ARN): IAM would refuse the policy', () => {
    expect(xmlBucketName).toMatch(/^[a-z0-9][a-z0-9.-]+$/);
    expect(ingest.status).toBe('failed');
    const log = ingest.log!.replace(/\s+/g, ' ');
    expect(log).toMatch(/aws_iam_role_policy\.[\w-]+\.policy: IAM refuses a Resource that is neither \* nor an ARN: /);
    expect(log).toContain(`${xmlBucketName}/incoming/*`);
  });

  test("a role's inline policies over 10,240 characters: IAM would refuse them (LimitExceeded)", () => {
    const role = app.stacks.ingest.resource!.aws_iam_role[oversizedRole].name as string;
    expect(role).toMatch(/^xmlpipe-dev-/);
    expect(ingest.log!.replace(/\s+/g, ' ')).toMatch(
      new RegExp(`IAM refuses inline policies over 10240 characters per role \\(LimitExceeded\\): ${role} has 1\\d{4}`),
    );
  });

  test('an output the producer does not export: the consumer cannot plan', () => {
    expect(sftp.status).toBe('failed');
    expect(sftp.log).toMatch(/Error: Unsupported attribute/);
    expect(sftp.log).toContain(missing);
  });

  test("a name where the provider wants an ARN: the provider's own validator refuses it (mocked values are real-looking names)", () => {
    expect(batch.status).toBe('failed');
    expect(batch.log).toMatch(/Error: "execution_role_arn" \(xmlpipe-dev-[\w-]+\) is an invalid ARN/);
  });
});
