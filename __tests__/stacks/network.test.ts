// network stack: synthesized resources and their properties, default and with NAT.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../stacks/paths';
import { INTERFACE_ENDPOINT_SERVICES, taskAddressCapacity } from '../../stacks/config';
import { maskTerraformRefs } from '../../tools/tf-json';
import { policy, readStack, synthesize } from './synth';

const ref = (type: string, name: string, attr = 'id') => `\${${type}.${name}.${attr}}`;

/** AWS SDK v3 client package suffix -> VPC endpoint service name, where they differ. */
const SDK_ENDPOINT: Record<string, string> = { sfn: 'states', 'secrets-manager': 'secretsmanager', 'cloudwatch-logs': 'logs' };

describe('network, default configuration (no NAT)', () => {
  const { stacks, outdir } = synthesize();
  const net = stacks.network;

  test('GIVEN defaults WHEN synthesized THEN the VPC has DNS support for private endpoint names', () => {
    expect(net.only('aws_vpc')).toMatchObject({ cidr_block: '10.20.0.0/16', enable_dns_hostnames: true, enable_dns_support: true });
  });

  test('THEN there is one private subnet per AZ, in distinct AZs, with no public IPs', () => {
    const subnets = Object.values(net.resources('aws_subnet'));
    expect(subnets).toHaveLength(2);
    expect(subnets.map((s) => s.cidr_block)).toEqual(['10.20.0.0/20', '10.20.16.0/20']);
    expect(subnets.map((s) => s.availability_zone)).toEqual([
      '${element(data.aws_availability_zones.azs.names, 0)}',
      '${element(data.aws_availability_zones.azs.names, 1)}',
    ]);
    for (const s of subnets) expect(s).toMatchObject({ map_public_ip_on_launch: false, vpc_id: ref('aws_vpc', 'vpc') });
    expect(net.json.data?.aws_availability_zones.azs).toMatchObject({ state: 'available' });
  });

  test('THEN nothing public exists: no IGW, NAT, EIP, public subnet or default route', () => {
    for (const type of ['aws_internet_gateway', 'aws_nat_gateway', 'aws_eip', 'aws_route']) {
      expect(net.resources(type)).toEqual({});
    }
    expect(net.json.output?.public_subnet_ids.value).toEqual([]);
  });

  test('THEN an S3 gateway endpoint serves every private route table', () => {
    const s3 = net.resources('aws_vpc_endpoint')['s3-endpoint'];
    expect(s3).toMatchObject({ service_name: 'com.amazonaws.us-east-1.s3', vpc_endpoint_type: 'Gateway' });
    expect(s3.route_table_ids).toEqual([ref('aws_route_table', 'private-rt-0'), ref('aws_route_table', 'private-rt-1')]);
  });

  test('THEN interface endpoints exist only for what is called from inside the VPC: ECR api+dkr, Logs, Secrets Manager', () => {
    const interfaces = Object.values(net.resources('aws_vpc_endpoint')).filter((e) => e.vpc_endpoint_type === 'Interface');
    expect(interfaces.map((e) => e.service_name).sort()).toEqual(['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'].map((s) => `com.amazonaws.us-east-1.${s}`));
    for (const e of interfaces) {
      expect(e).toMatchObject({
        private_dns_enabled: true,
        security_group_ids: [ref('aws_security_group', 'endpoint-sg')],
        subnet_ids: [ref('aws_subnet', 'private-0'), ref('aws_subnet', 'private-1')],
      });
    }
  });

  test('THEN every endpoint has a caller in the VPC, and every AWS service a task calls has an endpoint', () => {
    // Callers: Fargate itself for each container (ECR pull with layers from S3, awslogs, secrets injected
    // from Secrets Manager) and the AWS SDK clients the images ship. Task role credentials come from
    // the ECS credentials endpoint, not STS; no image starts executions (Step Functions runs the tasks).
    const called = new Set<string>();
    for (const stack of ['ingest', 'batch']) {
      for (const td of Object.values(readStack(outdir, stack).resources('aws_ecs_task_definition'))) {
        const masked = maskTerraformRefs(td.container_definitions);
        for (const c of JSON.parse(masked.text)) {
          // `<repository url>:<tag>@<digest>`, the digest from the images stack's push to ECR.
          const image = String(c.image).replace(/TF_REF_\d+/g, (t) => masked.refs[t]);
          if (/^\$\{[^}]*aws_ecr_repository[^}]*repository_url\}:.*@\$\{[^}]*docker_registry_image[^}]*sha256_digest\}$/.test(image)) {
            ['ecr.api', 'ecr.dkr', 's3'].forEach((s) => called.add(s));
          }
          if (c.logConfiguration?.logDriver === 'awslogs') called.add('logs');
          if ((c.secrets ?? []).length > 0) called.add('secretsmanager');
        }
      }
    }
    for (const dir of ['sftp-lister', 'converter']) {
      const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'images', dir, 'package.json'), 'utf8'));
      for (const dep of Object.keys(pkg.dependencies ?? {})) {
        const client = /^@aws-sdk\/client-(.+)$/.exec(dep)?.[1];
        if (client) called.add(SDK_ENDPOINT[client] ?? client);
      }
    }
    const endpoints = Object.values(net.resources('aws_vpc_endpoint')).map((e) => String(e.service_name).replace('com.amazonaws.us-east-1.', ''));
    expect(endpoints.sort()).toEqual([...called].sort());
  });

  test("THEN the configuration's address arithmetic counts every network interface the stacks put in a private subnet", () => {
    // Whatever names a private subnet takes an address in it, except route table associations; the
    // state machine's tasks are what the arithmetic leaves room for.
    const placed: string[] = [];
    for (const stack of ['network', 'sftp', 'cluster', 'images', 'ingest', 'batch']) {
      for (const [type, byName] of Object.entries(readStack(outdir, stack).json.resource ?? {})) {
        if (type === 'aws_route_table_association' || type === 'aws_sfn_state_machine') continue;
        for (const [name, block] of Object.entries(byName as Record<string, unknown>)) {
          if (/aws_subnet\.?private-\d/.test(JSON.stringify(block))) placed.push(`${stack}/${type}.${name}`);
        }
      }
    }
    expect(placed.sort()).toEqual(
      [...INTERFACE_ENDPOINT_SERVICES.map((s) => `network/aws_vpc_endpoint.endpoint-${s.replace('.', '-')}`), 'sftp/aws_transfer_server.server'].sort(),
    );
    const capacity = taskAddressCapacity('10.20.0.0/16', 'transfer');
    expect(net.resources('aws_subnet')['private-0'].cidr_block).toBe(`10.20.0.0/${capacity.subnetPrefix}`);
    expect(capacity.perSubnet).toBe(2 ** (32 - capacity.subnetPrefix) - 5 - placed.length);
  });

  test('THEN the endpoint security group admits only HTTPS from the VPC', () => {
    const ingress = Object.values(net.resources('aws_vpc_security_group_ingress_rule'));
    expect(ingress).toHaveLength(1);
    expect(ingress[0]).toMatchObject({
      security_group_id: ref('aws_security_group', 'endpoint-sg'),
      ip_protocol: 'tcp',
      from_port: 443,
      to_port: 443,
      cidr_ipv4: '10.20.0.0/16',
    });
    // Inline rules would bypass the per-rule resources; none are declared.
    for (const sg of Object.values(net.resources('aws_security_group'))) {
      expect(sg.ingress).toBeUndefined();
      expect(sg.egress).toBeUndefined();
    }
  });

  test('THEN the task security group has no ingress and egress only to endpoints, S3 and SFTP in the VPC', () => {
    const egress = Object.values(net.resources('aws_vpc_security_group_egress_rule'));
    const task = ref('aws_security_group', 'task-sg');
    expect(egress.every((r) => r.security_group_id === task)).toBe(true);
    const rules = egress.map((r) => `${r.from_port}-${r.to_port} ${r.cidr_ipv4 ?? r.prefix_list_id}`).sort();
    expect(rules).toEqual(['22-22 10.20.0.0/16', `443-443 ${ref('aws_vpc_endpoint', 's3-endpoint', 'prefix_list_id')}`, '443-443 10.20.0.0/16']);
    expect(net.json.output?.task_security_group_id.value).toBe(task);
  });

  test('THEN the default security group is stripped of all rules', () => {
    expect(net.only('aws_default_security_group')).toMatchObject({ vpc_id: ref('aws_vpc', 'vpc'), ingress: [], egress: [] });
  });

  test('THEN VPC flow logs capture ALL traffic into a log group with retention, via a role only flow logs can assume', () => {
    expect(net.only('aws_flow_log')).toMatchObject({
      vpc_id: ref('aws_vpc', 'vpc'),
      traffic_type: 'ALL',
      log_destination_type: 'cloud-watch-logs',
      log_destination: ref('aws_cloudwatch_log_group', 'flow-log-group', 'arn'),
      iam_role_arn: ref('aws_iam_role', 'flow-log-role', 'arn'),
    });
    expect(net.only('aws_cloudwatch_log_group')).toMatchObject({ retention_in_days: 30, name: '/vpc/xmlpipe-dev-vpc/flow-logs' });
    const trust = policy(net.only('aws_iam_role').assume_role_policy);
    expect(trust.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'vpc-flow-logs.amazonaws.com' },
        Condition: expect.objectContaining({ StringEquals: { 'aws:SourceAccount': '${data.aws_caller_identity.account.account_id}' } }),
      }),
    ]);
    const perms = policy(net.only('aws_iam_role_policy').policy).Statement;
    expect(perms).toHaveLength(1);
    expect(perms[0].Action).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams']);
    expect(perms[0].Resource).toEqual([
      ref('aws_cloudwatch_log_group', 'flow-log-group', 'arn'),
      `${ref('aws_cloudwatch_log_group', 'flow-log-group', 'arn')}:*`,
    ]);
  });

  test('THEN the provider tags every resource with project and stage, and state is local per stage', () => {
    expect(net.json.provider?.aws[0]).toMatchObject({
      region: 'us-east-1',
      default_tags: [{ tags: { project: 'xmlpipe', stage: 'dev', 'managed-by': 'cdktf', stack: 'network' } }],
    });
    expect(net.json.terraform.backend?.local.path).toMatch(/terraform\.xmlpipe-dev\.network\.tfstate$/);
  });
});

describe('network with NAT over three AZs', () => {
  const { stacks } = synthesize({ env: { PIPELINE_NAT: 'true', PIPELINE_AZ_COUNT: '3', PIPELINE_VPC_CIDR: '172.16.0.0/20' } });
  const net = stacks.network;

  test('GIVEN NAT on WHEN synthesized THEN public subnets sit after the private range and keep private ones in place', () => {
    const subnets = net.resources('aws_subnet');
    expect(['private-0', 'private-1', 'private-2'].map((n) => subnets[n].cidr_block)).toEqual(['172.16.0.0/24', '172.16.1.0/24', '172.16.2.0/24']);
    expect(['public-0', 'public-1', 'public-2'].map((n) => subnets[n].cidr_block)).toEqual(['172.16.8.0/24', '172.16.9.0/24', '172.16.10.0/24']);
    for (const n of ['public-0', 'public-1', 'public-2']) expect(subnets[n].map_public_ip_on_launch).toBe(false);
  });

  test('THEN each AZ routes out through its own NAT gateway, and public subnets through the IGW', () => {
    expect(Object.keys(net.resources('aws_nat_gateway'))).toHaveLength(3);
    expect(Object.values(net.resources('aws_eip')).every((e) => e.domain === 'vpc')).toBe(true);
    const routes = net.resources('aws_route');
    expect(routes['public-default-route']).toMatchObject({ destination_cidr_block: '0.0.0.0/0', gateway_id: ref('aws_internet_gateway', 'igw') });
    for (let i = 0; i < 3; i++) {
      expect(routes[`private-default-route-${i}`]).toMatchObject({
        route_table_id: ref('aws_route_table', `private-rt-${i}`),
        destination_cidr_block: '0.0.0.0/0',
        nat_gateway_id: ref('aws_nat_gateway', `nat-${i}`),
      });
      expect(net.resources('aws_nat_gateway')[`nat-${i}`].subnet_id).toBe(ref('aws_subnet', `public-${i}`));
    }
  });

  test('THEN the interface endpoints span all three private subnets', () => {
    const e = net.resources('aws_vpc_endpoint')['endpoint-logs'];
    expect(e.subnet_ids).toEqual([0, 1, 2].map((i) => ref('aws_subnet', `private-${i}`)));
  });
});

describe('network with an external SFTP host', () => {
  test('GIVEN an external host on port 2222 WHEN synthesized THEN tasks may leave on that port only (plus HTTPS inside)', () => {
    const { stacks } = synthesize({
      env: {
        PIPELINE_NAT: 'true',
        PIPELINE_SFTP_SOURCE: 'external',
        PIPELINE_SFTP_HOST: 'sftp.partner.example',
        PIPELINE_SFTP_PORT: '2222',
        PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: 'SHA256:' + 'x'.repeat(43),
      },
    });
    const sftpRule = stacks.network.resources('aws_vpc_security_group_egress_rule')['task-sftp'];
    expect(sftpRule).toMatchObject({ from_port: 2222, to_port: 2222, cidr_ipv4: '0.0.0.0/0', ip_protocol: 'tcp' });
  });
});
