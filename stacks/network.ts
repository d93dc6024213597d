// network: a VPC over 2+ AZs whose private subnets reach every AWS API the tasks call through VPC
// endpoints, so no NAT is needed by default. Public subnets and NAT gateways exist only when enabled.
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones';
import { DefaultSecurityGroup } from '@cdktf/provider-aws/lib/default-security-group';
import { Eip } from '@cdktf/provider-aws/lib/eip';
import { FlowLog } from '@cdktf/provider-aws/lib/flow-log';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway';
import { Route } from '@cdktf/provider-aws/lib/route';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { VpcEndpoint } from '@cdktf/provider-aws/lib/vpc-endpoint';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Fn, TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { cidrSubnet, INTERFACE_ENDPOINT_SERVICES, SUBNET_NEW_BITS } from './config';
import { AccountScope } from './constructs/iam';

export { INTERFACE_ENDPOINT_SERVICES };

/** Private subnets take indexes 0..5, public ones 8..13, so changing azCount renumbers nothing. */
const PUBLIC_SUBNET_OFFSET = 8;

export class NetworkStack extends PipelineStack {
  readonly vpc: Vpc;
  readonly privateSubnets: Subnet[];
  readonly publicSubnets: Subnet[];
  /** Security group for Fargate tasks: no ingress; egress only to the endpoints, S3 and the SFTP port. */
  readonly taskSecurityGroup: SecurityGroup;
  readonly endpointSecurityGroup: SecurityGroup;
  readonly flowLogGroup: CloudwatchLogGroup;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { azCount, vpcCidr, natEnabled, region, logRetentionDays, sftp } = this.config;

    const azs = new DataAwsAvailabilityZones(this, 'azs', {
      state: 'available',
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });
    const aws = new AccountScope(this, region);

    this.vpc = new Vpc(this, 'vpc', {
      cidrBlock: vpcCidr,
      enableDnsHostnames: true, // interface endpoints' private DNS needs both
      enableDnsSupport: true,
      tags: { Name: this.name('vpc') },
    });

    // The default security group is a trap (members reach each other); strip it of every rule.
    new DefaultSecurityGroup(this, 'default-sg', { vpcId: this.vpc.id, ingress: [], egress: [] });

    const azName = (i: number) => Fn.element(azs.names, i);
    this.privateSubnets = [];
    this.publicSubnets = [];
    const privateRouteTables: RouteTable[] = [];
    for (let i = 0; i < azCount; i++) {
      const subnet = new Subnet(this, `private-${i}`, {
        vpcId: this.vpc.id,
        cidrBlock: cidrSubnet(vpcCidr, SUBNET_NEW_BITS, i),
        availabilityZone: azName(i),
        mapPublicIpOnLaunch: false,
        tags: { Name: this.name(`private-${i}`), tier: 'private' },
      });
      const rt = new RouteTable(this, `private-rt-${i}`, { vpcId: this.vpc.id, tags: { Name: this.name(`private-${i}`) } });
      new RouteTableAssociation(this, `private-rta-${i}`, { subnetId: subnet.id, routeTableId: rt.id });
      this.privateSubnets.push(subnet);
      privateRouteTables.push(rt);
    }

    if (natEnabled) {
      const igw = new InternetGateway(this, 'igw', { vpcId: this.vpc.id, tags: { Name: this.name('igw') } });
      const publicRt = new RouteTable(this, 'public-rt', { vpcId: this.vpc.id, tags: { Name: this.name('public') } });
      new Route(this, 'public-default-route', { routeTableId: publicRt.id, destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.id });
      for (let i = 0; i < azCount; i++) {
        const subnet = new Subnet(this, `public-${i}`, {
          vpcId: this.vpc.id,
          cidrBlock: cidrSubnet(vpcCidr, SUBNET_NEW_BITS, PUBLIC_SUBNET_OFFSET + i),
          availabilityZone: azName(i),
          mapPublicIpOnLaunch: false, // only the NAT gateways live here, with their own EIPs
          tags: { Name: this.name(`public-${i}`), tier: 'public' },
        });
        new RouteTableAssociation(this, `public-rta-${i}`, { subnetId: subnet.id, routeTableId: publicRt.id });
        // One NAT per AZ: an AZ outage must not cut the other AZs' egress.
        const eip = new Eip(this, `nat-eip-${i}`, { domain: 'vpc', tags: { Name: this.name(`nat-${i}`) } });
        const nat = new NatGateway(this, `nat-${i}`, {
          allocationId: eip.allocationId,
          subnetId: subnet.id,
          tags: { Name: this.name(`nat-${i}`) },
          dependsOn: [igw],
        });
        new Route(this, `private-default-route-${i}`, {
          routeTableId: privateRouteTables[i].id,
          destinationCidrBlock: '0.0.0.0/0',
          natGatewayId: nat.id,
        });
        this.publicSubnets.push(subnet);
      }
    }

    // S3 (image layers, data buckets) through a free gateway endpoint.
    const s3Endpoint = new VpcEndpoint(this, 's3-endpoint', {
      vpcId: this.vpc.id,
      serviceName: `com.amazonaws.${region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: privateRouteTables.map((rt) => rt.id),
      tags: { Name: this.name('s3') },
    });

    this.endpointSecurityGroup = new SecurityGroup(this, 'endpoint-sg', {
      name: this.name('endpoints'),
      description: 'Interface VPC endpoints: HTTPS from inside the VPC only',
      vpcId: this.vpc.id,
      tags: { Name: this.name('endpoints') },
    });
    new VpcSecurityGroupIngressRule(this, 'endpoint-https-from-vpc', {
      securityGroupId: this.endpointSecurityGroup.id,
      description: 'HTTPS from the VPC',
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: vpcCidr,
    });
    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      new VpcEndpoint(this, `endpoint-${service.replace('.', '-')}`, {
        vpcId: this.vpc.id,
        serviceName: `com.amazonaws.${region}.${service}`,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: this.privateSubnets.map((s) => s.id),
        securityGroupIds: [this.endpointSecurityGroup.id],
        tags: { Name: this.name(service) },
      });
    }

    this.taskSecurityGroup = new SecurityGroup(this, 'task-sg', {
      name: this.name('tasks'),
      description: 'Fargate tasks: no ingress; egress to endpoints, S3 and SFTP only',
      vpcId: this.vpc.id,
      tags: { Name: this.name('tasks') },
    });
    new VpcSecurityGroupEgressRule(this, 'task-https-to-endpoints', {
      securityGroupId: this.taskSecurityGroup.id,
      description: 'HTTPS to the interface endpoints',
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: vpcCidr,
    });
    new VpcSecurityGroupEgressRule(this, 'task-https-to-s3', {
      securityGroupId: this.taskSecurityGroup.id,
      description: 'HTTPS to S3 through the gateway endpoint',
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      prefixListId: s3Endpoint.prefixListId,
    });
    if (sftp.kind === 'transfer') {
      new VpcSecurityGroupEgressRule(this, 'task-sftp', {
        securityGroupId: this.taskSecurityGroup.id,
        description: 'SFTP to the Transfer Family VPC endpoint',
        ipProtocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        cidrIpv4: vpcCidr,
      });
    } else {
      new VpcSecurityGroupEgressRule(this, 'task-sftp', {
        securityGroupId: this.taskSecurityGroup.id,
        description: `SFTP to the external host ${sftp.host} through NAT`,
        ipProtocol: 'tcp',
        fromPort: sftp.port,
        toPort: sftp.port,
        cidrIpv4: '0.0.0.0/0',
      });
    }

    // Flow logs of all traffic to CloudWatch Logs, through a role only the flow-logs service of this account can assume.
    this.flowLogGroup = new CloudwatchLogGroup(this, 'flow-log-group', {
      name: `/vpc/${this.name('vpc')}/flow-logs`,
      retentionInDays: logRetentionDays,
    });
    const flowLogRole = new IamRole(this, 'flow-log-role', {
      name: this.name('vpc-flow-logs'),
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'vpc-flow-logs.amazonaws.com' },
            Action: 'sts:AssumeRole',
            Condition: {
              StringEquals: { 'aws:SourceAccount': aws.accountId },
              ArnLike: { 'aws:SourceArn': aws.arn('ec2', 'vpc-flow-log/*') },
            },
          },
        ],
      }),
    });
    new IamRolePolicy(this, 'flow-log-role-policy', {
      name: 'write-flow-logs',
      role: flowLogRole.id,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
            Resource: [this.flowLogGroup.arn, `${this.flowLogGroup.arn}:*`],
          },
        ],
      }),
    });
    new FlowLog(this, 'flow-log', {
      vpcId: this.vpc.id,
      trafficType: 'ALL',
      logDestinationType: 'cloud-watch-logs',
      logDestination: this.flowLogGroup.arn,
      iamRoleArn: flowLogRole.arn,
      maxAggregationInterval: 60,
      tags: { Name: this.name('vpc') },
    });

    new TerraformOutput(this, 'vpc_id', { value: this.vpc.id });
    new TerraformOutput(this, 'private_subnet_ids', { value: this.privateSubnets.map((s) => s.id) });
    new TerraformOutput(this, 'public_subnet_ids', { value: this.publicSubnets.map((s) => s.id) });
    new TerraformOutput(this, 'task_security_group_id', { value: this.taskSecurityGroup.id });
  }
}
