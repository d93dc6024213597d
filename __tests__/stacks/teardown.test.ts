// Teardown: `cdktf destroy` of a test stage leaves nothing and needs no manual step (buckets holding
// object versions, ECR repositories holding images, the key secret's recovery window), while a stage
// named like production keeps every protection unless told otherwise.
import { synthesize, SynthStack } from './synth';

/** What destroy would do to each protected resource, read from the synthesized Terraform. */
function teardown(stacks: Record<string, SynthStack>) {
  const all = (type: string) =>
    Object.values(stacks).flatMap((s) => Object.entries(s.resources(type)).map(([name, r]) => [`${s.dir.split('/').pop()}.${name}`, r] as const));
  return {
    buckets: Object.fromEntries(all('aws_s3_bucket').map(([n, r]) => [n, r.force_destroy])),
    repositories: Object.fromEntries(all('aws_ecr_repository').map(([n, r]) => [n, r.force_delete])),
    secrets: Object.fromEntries(all('aws_secretsmanager_secret').map(([n, r]) => [n, r.recovery_window_in_days])),
  };
}

const expected = (force: boolean, days: number) => ({
  buckets: { 'sftp.sftp-bucket_E40710DD': force, 'cluster.xml-bucket_00BAF098': force },
  repositories: { 'cluster.repo-converter': force, 'cluster.repo-sftp-lister': force },
  secrets: { 'sftp.private-key': days },
});

describe('teardown settings in the synthesized Terraform', () => {
  test('GIVEN the default stage (dev) WHEN synthesized THEN destroy empties buckets and repositories and deletes the secret at once', () => {
    expect(teardown(synthesize().stacks)).toEqual(expected(true, 0));
  });

  test.each(['prod', 'production', 'prd'])(
    'GIVEN stage %s WHEN synthesized THEN buckets and repositories are kept unless empty and the secret has a 30-day window',
    (stage) => {
      expect(teardown(synthesize({ env: { PIPELINE_STAGE: stage } }).stacks)).toEqual(expected(false, 30));
    },
  );

  test('GIVEN a production stage with explicit teardown settings WHEN synthesized THEN they win', () => {
    const { stacks } = synthesize({ env: { PIPELINE_STAGE: 'prod', PIPELINE_FORCE_DESTROY: 'true', PIPELINE_SECRET_RECOVERY_DAYS: '0' } });
    expect(teardown(stacks)).toEqual(expected(true, 0));
  });

  test('GIVEN a test stage that asks for protections WHEN synthesized THEN it gets them', () => {
    const { stacks } = synthesize({ env: { PIPELINE_STAGE: 'qa', PIPELINE_FORCE_DESTROY: 'false', PIPELINE_SECRET_RECOVERY_DAYS: '7' } });
    expect(teardown(stacks)).toEqual(expected(false, 7));
  });
});
