// The security baseline, held on the synthesized JSON of every stack (default app and the
// external-SFTP + NAT variant): each rule looks at every resource of its type wherever it is, so a new
// bucket, task definition or log group in any stack is held to the same standard.
import { buildSecurityModel, RoleModel, SecurityModel, simulate } from '../../tools/review';
import { allResources, Block, readApp as readSynthesized } from '../../tools/tf-json';
import { synthesize, TEST_PUBLIC_KEY } from '../stacks/synth';

const VARIANTS: [string, Record<string, string>][] = [
  ['defaults (managed Transfer server)', { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY, PIPELINE_SFTP_ALLOWED_CIDRS: '192.168.10.0/24' }],
  [
    'external SFTP host with NAT',
    {
      PIPELINE_SFTP_SOURCE: 'external',
      PIPELINE_NAT: 'true',
      PIPELINE_SFTP_HOST: 'sftp.example.com',
      PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'b'.repeat(43)}`,
    },
  ],
];

const ANYWHERE = ['0.0.0.0/0', '::/0'];

/** Resources of a type across all stacks, each with the `${type.name.attr}` reference that points at it. */
function ofType(model: SecurityModel, type: string): { stack: string; name: string; block: Block; ref: (attr: string) => string }[] {
  return allResources(model.app)
    .filter(([, t]) => t === type)
    .map(([stack, , name, block]) => ({ stack, name, block, ref: (attr: string) => `\${${type}.${name}.${attr}}` }));
}

/** The resources of `type` in `stack` whose `arg` points at `ref`. */
function pointingAt(model: SecurityModel, stack: string, type: string, arg: string, ref: string): Block[] {
  return Object.values(model.app.stacks[stack].resource?.[type] ?? {}).filter((b) => b[arg] === ref);
}

describe.each(VARIANTS)('security baseline: %s', (_variant, env) => {
  const model = buildSecurityModel(readSynthesized(synthesize({ env }).outdir));

  describe('S3', () => {
    const buckets = ofType(model, 'aws_s3_bucket');

    test('GIVEN every bucket THEN all four public-access blocks are on', () => {
      expect(buckets.length).toBeGreaterThan(0);
      for (const b of buckets) {
        const [pab, ...more] = pointingAt(model, b.stack, 'aws_s3_bucket_public_access_block', 'bucket', b.ref('id'));
        expect(more).toEqual([]);
        expect({ ...pab, bucket: b.name }).toMatchObject({
          bucket: b.name,
          block_public_acls: true,
          block_public_policy: true,
          ignore_public_acls: true,
          restrict_public_buckets: true,
        });
      }
    });

    test('GIVEN every bucket THEN default encryption is configured (SSE-KMS or SSE-S3) and ACLs are disabled', () => {
      for (const b of buckets) {
        const [sse] = pointingAt(model, b.stack, 'aws_s3_bucket_server_side_encryption_configuration', 'bucket', b.ref('id'));
        expect({ bucket: b.name, algorithm: sse?.rule?.[0]?.apply_server_side_encryption_by_default?.sse_algorithm }).toEqual({
          bucket: b.name,
          algorithm: expect.stringMatching(/^(aws:kms|aws:kms:dsse|AES256)$/),
        });
        const [own] = pointingAt(model, b.stack, 'aws_s3_bucket_ownership_controls', 'bucket', b.ref('id'));
        expect({ bucket: b.name, ownership: own?.rule?.object_ownership }).toEqual({ bucket: b.name, ownership: 'BucketOwnerEnforced' });
      }
    });

    test('GIVEN every data bucket THEN versioning is enabled', () => {
      for (const b of buckets) {
        const [v] = pointingAt(model, b.stack, 'aws_s3_bucket_versioning', 'bucket', b.ref('id'));
        expect({ bucket: b.name, status: v?.versioning_configuration?.status }).toEqual({ bucket: b.name, status: 'Enabled' });
      }
    });

    test('GIVEN every bucket WHEN a principal allowed everything calls over plain HTTP THEN the bucket policy denies it, and allows over TLS', async () => {
      for (const b of model.buckets) {
        expect({ bucket: b.name, hasPolicy: b.policy !== undefined }).toEqual({ bucket: b.name, hasPolicy: true });
        const admin: RoleModel = {
          stack: 'test',
          logical: 'admin',
          key: 'test/admin',
          name: 'admin',
          arn: 'arn:aws:iam::123456789012:role/admin',
          trust: { Version: '2012-10-17', Statement: [] },
          policies: [
            {
              name: 'all-s3',
              document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:ListBucket'], Resource: '*' }] },
            },
          ],
        };
        for (const [action, resource] of [
          ['s3:GetObject', `${b.arn}/k`],
          ['s3:PutObject', `${b.arn}/k`],
          ['s3:ListBucket', b.arn],
        ]) {
          expect([b.name, action, await simulate(model, admin, { action, resource, context: { 'aws:SecureTransport': 'false' } })]).toEqual([
            b.name,
            action,
            'ExplicitlyDenied',
          ]);
          expect([b.name, action, await simulate(model, admin, { action, resource })]).toEqual([b.name, action, 'Allowed']);
        }
      }
    });
  });

  describe('ECS', () => {
    const taskDefs = ofType(model, 'aws_ecs_task_definition');
    const containers = taskDefs.flatMap((td) =>
      (model.resolver.json(td.stack, td.block.container_definitions, false) as Block[]).map((c) => ({ family: td.block.family as string, stack: td.stack, c })),
    );
    const logGroups = Object.fromEntries(ofType(model, 'aws_cloudwatch_log_group').map((g) => [model.resolver.text(g.stack, g.block.name), g.block]));

    test('GIVEN the app THEN both pipeline tasks are defined (lister and converter)', () => {
      expect(containers.map((x) => x.c.name).sort()).toEqual(['converter', 'sftp-lister']);
    });

    test('GIVEN every container THEN it runs as a non-root user on a read-only root filesystem, unprivileged', () => {
      for (const { family, c } of containers) {
        const user = String(c.user ?? '');
        expect({ family, user, nonRoot: user !== '' && !/^(0|root)(:|$)/.test(user) }).toMatchObject({ family, nonRoot: true });
        expect({ family, readonlyRootFilesystem: c.readonlyRootFilesystem, privileged: c.privileged ?? false }).toEqual({
          family,
          readonlyRootFilesystem: true,
          privileged: false,
        });
        expect({ family, addedCapabilities: c.linuxParameters?.capabilities?.add ?? [] }).toEqual({ family, addedCapabilities: [] });
      }
    });

    test('GIVEN every container THEN it logs with awslogs to a log group of the app that has a retention', () => {
      for (const { family, c } of containers) {
        expect({ family, driver: c.logConfiguration?.logDriver }).toEqual({ family, driver: 'awslogs' });
        const group = c.logConfiguration.options['awslogs-group'] as string;
        expect({ family, group, retention: logGroups[group]?.retention_in_days }).toEqual({ family, group, retention: expect.any(Number) });
      }
    });

    test('GIVEN every task definition THEN it is Fargate awsvpc (no host networking, no host paths)', () => {
      for (const td of taskDefs) {
        expect({ family: td.block.family, networkMode: td.block.network_mode, compat: td.block.requires_compatibilities }).toEqual({
          family: td.block.family,
          networkMode: 'awsvpc',
          compat: ['FARGATE'],
        });
        for (const v of td.block.volume ?? []) expect(v.host_path).toBeUndefined();
      }
    });
  });

  test('ECR: GIVEN every repository THEN images are scanned on push and tags are immutable', () => {
    const repos = ofType(model, 'aws_ecr_repository');
    expect(repos.length).toBe(2);
    for (const r of repos) {
      expect({ repo: r.block.name, scanOnPush: r.block.image_scanning_configuration?.scan_on_push, mutability: r.block.image_tag_mutability }).toEqual({
        repo: r.block.name,
        scanOnPush: true,
        mutability: 'IMMUTABLE',
      });
    }
  });

  test('Step Functions: GIVEN every state machine THEN it logs (with execution data) to a retained log group and is traced', () => {
    const machines = ofType(model, 'aws_sfn_state_machine');
    expect(machines.length).toBeGreaterThan(0);
    for (const m of machines) {
      const logging = m.block.logging_configuration;
      expect({ name: m.block.name, level: logging?.level, tracing: m.block.tracing_configuration?.enabled }).toEqual({
        name: m.block.name,
        level: expect.stringMatching(/^(ALL|ERROR)$/),
        tracing: true,
      });
      const group = /^\$\{aws_cloudwatch_log_group\.([\w-]+)\.arn\}:\*$/.exec(logging.log_destination);
      expect(group).not.toBeNull();
      expect(model.app.stacks[m.stack].resource!.aws_cloudwatch_log_group[group![1]].retention_in_days).toBeGreaterThan(0);
    }
  });

  describe('VPC', () => {
    const vpcs = ofType(model, 'aws_vpc');

    test('GIVEN every VPC THEN flow logs of ALL traffic are on and its default security group has no rules', () => {
      expect(vpcs.length).toBe(1);
      for (const v of vpcs) {
        const [flow] = pointingAt(model, v.stack, 'aws_flow_log', 'vpc_id', v.ref('id'));
        expect(flow).toMatchObject({ traffic_type: 'ALL' });
        const [dsg, ...more] = pointingAt(model, v.stack, 'aws_default_security_group', 'vpc_id', v.ref('id'));
        expect(more).toEqual([]);
        expect(dsg).toMatchObject({ ingress: [], egress: [] });
      }
    });

    test('GIVEN every security group rule in every stack THEN none admits ingress from 0.0.0.0/0 or ::/0', () => {
      const ingress: string[] = [];
      for (const [stack, type, name, b] of allResources(model.app)) {
        if (type === 'aws_vpc_security_group_ingress_rule')
          ingress.push(`${stack}/${name} ${b.cidr_ipv4 ?? b.cidr_ipv6 ?? b.prefix_list_id ?? b.referenced_security_group_id}`);
        if (type === 'aws_security_group_rule' && b.type === 'ingress')
          ingress.push(`${stack}/${name} ${[...(b.cidr_blocks ?? []), ...(b.ipv6_cidr_blocks ?? [])].join(',')}`);
        if (type === 'aws_security_group')
          for (const r of b.ingress ?? []) ingress.push(`${stack}/${name} ${[...(r.cidr_blocks ?? []), ...(r.ipv6_cidr_blocks ?? [])].join(',')}`);
        if (type === 'aws_network_acl_rule' && !b.egress && b.rule_action === 'allow') ingress.push(`${stack}/${name} ${b.cidr_block ?? b.ipv6_cidr_block}`);
      }
      expect(ingress.length).toBeGreaterThan(0);
      expect(ingress.filter((r) => ANYWHERE.some((a) => r.split(' ')[1].split(',').includes(a)))).toEqual([]);
    });

    test('GIVEN every subnet THEN none assigns public IPs, and tasks start without one', () => {
      for (const s of ofType(model, 'aws_subnet'))
        expect({ subnet: s.name, public: s.block.map_public_ip_on_launch }).toEqual({ subnet: s.name, public: false });
      for (const m of ofType(model, 'aws_sfn_state_machine')) {
        const assigns = [...String(m.block.definition).matchAll(/"AssignPublicIp":"(\w+)"/g)].map((x) => x[1]);
        expect(assigns.length).toBeGreaterThan(0);
        expect([...new Set(assigns)]).toEqual(['DISABLED']);
      }
    });
  });

  test('Transfer: GIVEN every Transfer server THEN it is not PUBLIC (no Elastic IPs), uses a 2024-01 or newer policy and logs', () => {
    for (const s of ofType(model, 'aws_transfer_server')) {
      expect(s.block.endpoint_type).toBe('VPC');
      expect(s.block.endpoint_details?.address_allocation_ids ?? []).toEqual([]);
      const [, date] = /^TransferSecurityPolicy-(?:FIPS-)?(\d{4}-\d{2})$/.exec(s.block.security_policy_name) ?? [];
      expect(date >= '2024-01').toBe(true);
      // Structured logs to a retained log group of the app; no logging role, whose legacy logs would go
      // to /aws/transfer/<server-id>, a group without retention (it is for workflows, which no server has).
      expect(s.block.structured_log_destinations?.length ?? 0).toBeGreaterThan(0);
      for (const d of s.block.structured_log_destinations) expect(d).toMatch(/^\$\{aws_cloudwatch_log_group\.[\w-]+\.arn\}:\*$/);
      expect(s.block.logging_role).toBeUndefined();
      expect(s.block.workflow_details).toBeUndefined();
    }
  });

  test('Logs: GIVEN every log group in every stack THEN it has a retention', () => {
    const groups = ofType(model, 'aws_cloudwatch_log_group');
    expect(groups.length).toBeGreaterThanOrEqual(4);
    for (const g of groups) expect({ group: g.block.name, retention: g.block.retention_in_days > 0 }).toEqual({ group: g.block.name, retention: true });
  });
});
