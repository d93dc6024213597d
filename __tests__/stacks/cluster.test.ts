// cluster stack: ECS cluster and capacity providers, log groups, ECR repositories with the lab's SSM
// parameters, and the XML bucket.
import { synthesize } from './synth';

const ref = (type: string, name: string, attr = 'id') => `\${${type}.${name}.${attr}}`;

describe('cluster', () => {
  const { stacks } = synthesize({ env: { PIPELINE_STAGE: 'prod', PIPELINE_LOG_RETENTION_DAYS: '90' } });
  const cluster = stacks.cluster;

  test('GIVEN stage prod WHEN synthesized THEN the ECS cluster has Container Insights on', () => {
    expect(cluster.only('aws_ecs_cluster')).toMatchObject({
      name: 'xmlpipe-prod-cluster',
      setting: [{ name: 'containerInsights', value: 'enabled' }],
    });
  });

  test('THEN Fargate and Fargate Spot are its capacity providers, on-demand by default', () => {
    expect(cluster.only('aws_ecs_cluster_capacity_providers')).toMatchObject({
      cluster_name: ref('aws_ecs_cluster', 'cluster', 'name'),
      capacity_providers: ['FARGATE', 'FARGATE_SPOT'],
      default_capacity_provider_strategy: [{ capacity_provider: 'FARGATE', weight: 1, base: 0 }],
    });
  });

  test('THEN each image has a log group with the configured retention', () => {
    const groups = Object.values(cluster.resources('aws_cloudwatch_log_group'));
    expect(groups.map((g) => [g.name, g.retention_in_days]).sort()).toEqual([
      ['/ecs/xmlpipe-prod-converter', 90],
      ['/ecs/xmlpipe-prod-sftp-lister', 90],
    ]);
  });

  test('THEN both ECR repositories scan on push, have immutable tags and a lifecycle policy', () => {
    const repos = cluster.resources('aws_ecr_repository');
    expect(
      Object.values(repos)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['xmlpipe-prod/converter', 'xmlpipe-prod/sftp-lister']);
    for (const r of Object.values(repos)) {
      expect(r).toMatchObject({
        image_tag_mutability: 'IMMUTABLE',
        image_scanning_configuration: { scan_on_push: true },
        force_delete: false,
      });
    }
    const policies = Object.values(cluster.resources('aws_ecr_lifecycle_policy'));
    expect(policies.map((p) => p.repository).sort()).toEqual([
      ref('aws_ecr_repository', 'repo-converter', 'name'),
      ref('aws_ecr_repository', 'repo-sftp-lister', 'name'),
    ]);
    const rules = JSON.parse(policies[0].policy).rules;
    expect(rules).toEqual([
      expect.objectContaining({
        rulePriority: 1,
        selection: expect.objectContaining({ tagStatus: 'untagged', countType: 'sinceImagePushed', countNumber: 7 }),
        action: { type: 'expire' },
      }),
      expect.objectContaining({
        rulePriority: 2,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 30 },
        action: { type: 'expire' },
      }),
    ]);
  });

  test('THEN the SSM parameters repo_uri_sftp and repo_uri_batch hold the repository URIs', () => {
    const params = Object.values(cluster.resources('aws_ssm_parameter'));
    expect(params.map((p) => [p.name, p.type, p.value]).sort()).toEqual([
      ['/xmlpipe/prod/repo_uri_batch', 'String', ref('aws_ecr_repository', 'repo-converter', 'repository_url')],
      ['/xmlpipe/prod/repo_uri_sftp', 'String', ref('aws_ecr_repository', 'repo-sftp-lister', 'repository_url')],
    ]);
  });

  test('THEN the XML bucket has the full baseline and is exported under the lab output name', () => {
    const bucketName = Object.keys(cluster.resources('aws_s3_bucket'))[0];
    expect(cluster.only('aws_s3_bucket').bucket_prefix).toBe('xmlpipe-prod-xml-');
    expect(cluster.only('aws_s3_bucket_public_access_block')).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(cluster.only('aws_s3_bucket_versioning').versioning_configuration.status).toBe('Enabled');
    expect(cluster.only('aws_s3_bucket_server_side_encryption_configuration').rule[0].apply_server_side_encryption_by_default.sse_algorithm).toBe('aws:kms');
    expect(JSON.parse(cluster.only('aws_s3_bucket_policy').policy).Statement[0].Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
    expect(cluster.json.output?.xml_bucket_name.value).toBe(ref('aws_s3_bucket', bucketName));
    expect(cluster.json.output?.cluster_name.value).toBe(ref('aws_ecs_cluster', 'cluster', 'name'));
  });
});
