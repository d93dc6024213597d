// sftp: where files come from. By default a managed AWS Transfer Family SFTP server reachable only
// inside the VPC, storing into its own locked-down bucket; or an external host (config). Either way,
// a Secrets Manager secret for the SFTP private key, created WITHOUT a value: the operator puts the key
// in (README), so it never appears in Terraform state, synthesized JSON or the repo.
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DataAwsVpcEndpoint } from '@cdktf/provider-aws/lib/data-aws-vpc-endpoint';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { TransferServer } from '@cdktf/provider-aws/lib/transfer-server';
import { TransferSshKey } from '@cdktf/provider-aws/lib/transfer-ssh-key';
import { TransferUser } from '@cdktf/provider-aws/lib/transfer-user';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Fn, TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { AccountScope } from './constructs/iam';
import { NetworkStack } from './network';
import { SecureBucket } from './secure-bucket';

/** Newest Transfer Family SFTP policy at the time of writing (no SHA-1, no CBC, ETM MACs only). */
export const TRANSFER_SECURITY_POLICY = 'TransferSecurityPolicy-2024-01';

export interface SftpStackProps extends PipelineStackProps {
  readonly network: NetworkStack;
}

export class SftpStack extends PipelineStack {
  /** Host name tasks connect to (the VPC endpoint's DNS name, or the external host). */
  readonly host: string;
  readonly port: number;
  readonly userName: string;
  /** Accepted host-key fingerprints, comma-separated `SHA256:...` (what the lister verifies). */
  readonly hostKeyFingerprints: string;
  /** Secret holding the SFTP user's private key (value put in by the operator). */
  readonly privateKeySecret: SecretsmanagerSecret;
  /** Only with the managed Transfer server. */
  readonly server?: TransferServer;
  readonly bucket?: SecureBucket;
  /** Only with the managed Transfer server: the folder (S3 key prefix) the user lands in, with a trailing slash. */
  readonly homePrefix?: string;

  constructor(scope: Construct, id: string, props: SftpStackProps) {
    super(scope, id, props);
    const { sftp, region, logRetentionDays } = this.config;
    const { network } = props;

    // Deleting a secret with a recovery window (7-30 days) only schedules its deletion, and its name stays
    // taken meanwhile; 0 deletes it at once (ForceDeleteWithoutRecovery,
    // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html). A unique
    // suffix from Terraform lets destroy + deploy work at once either way; config.secretRecoveryDays is 0
    // for a test stage (destroy leaves nothing) and 30 for a production-like one (time to restore a secret
    // destroyed by mistake). Tasks and operators use its ARN (output sftp_private_key_secret_arn).
    this.privateKeySecret = new SecretsmanagerSecret(this, 'private-key', {
      namePrefix: `${this.config.namePrefix}/${this.config.stage}/sftp-private-key-`,
      description: `Private key of SFTP user ${sftp.userName} (OpenSSH format). Put the value in with: aws secretsmanager put-secret-value (see README)`,
      recoveryWindowInDays: this.config.secretRecoveryDays,
    });
    this.userName = sftp.userName;

    if (sftp.kind === 'external') {
      this.host = sftp.host;
      this.port = sftp.port;
      this.hostKeyFingerprints = sftp.hostKeyFingerprints.join(',');
    } else {
      const aws = new AccountScope(this, region);

      this.bucket = new SecureBucket(this, 'sftp-bucket', { bucketPrefix: `${this.name('sftp')}-`, forceDestroy: this.config.forceDestroy });
      const bucketName = this.bucket.bucket.id;
      const bucketArn = this.bucket.bucket.arn;
      this.homePrefix = `${sftp.userName}/`;

      // Structured (JSON) logging: Transfer delivers to the log groups in structured_log_destinations
      // through CloudWatch Logs log delivery, with no role. A logging role would only add legacy logs
      // in /aws/transfer/<server-id>, a group Transfer creates without retention; it is needed for
      // workflows, which this server has none of
      // (https://docs.aws.amazon.com/transfer/latest/userguide/log-server-manage.html).
      const logGroup = new CloudwatchLogGroup(this, 'transfer-logs', {
        name: `/aws/transfer/${this.name('sftp')}`,
        retentionInDays: logRetentionDays,
      });

      const serverSg = new SecurityGroup(this, 'server-sg', {
        name: this.name('sftp-endpoint'),
        description: 'Transfer Family SFTP VPC endpoint: port 22 from the VPC and configured private networks',
        vpcId: network.vpc.id,
        tags: { Name: this.name('sftp-endpoint') },
      });
      [network.config.vpcCidr, ...sftp.allowedCidrs].forEach((cidr, i) => {
        new VpcSecurityGroupIngressRule(this, `server-sftp-ingress-${i}`, {
          securityGroupId: serverSg.id,
          description: i === 0 ? 'SFTP from the VPC' : `SFTP from ${cidr}`,
          ipProtocol: 'tcp',
          fromPort: 22,
          toPort: 22,
          cidrIpv4: cidr,
        });
      });

      // VPC endpoint with no Elastic IPs: internal only, never PUBLIC.
      this.server = new TransferServer(this, 'server', {
        endpointType: 'VPC',
        endpointDetails: {
          vpcId: network.vpc.id,
          subnetIds: network.privateSubnets.map((s) => s.id),
          securityGroupIds: [serverSg.id],
        },
        protocols: ['SFTP'],
        domain: 'S3',
        identityProviderType: 'SERVICE_MANAGED',
        securityPolicyName: TRANSFER_SECURITY_POLICY,
        structuredLogDestinations: [`${logGroup.arn}:*`],
        tags: { Name: this.name('sftp') },
      });

      // The user's role: list and read/write only inside its home folder; assumable only by this server's users.
      const userRole = new IamRole(this, 'user-role', {
        name: this.name('sftp-user'),
        assumeRolePolicy: transferTrust(aws.accountId, aws.arn('transfer', `user/${this.server.id}/*`)),
      });
      new IamRolePolicy(this, 'user-policy', {
        name: 'home-folder-only',
        role: userRole.id,
        policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'ListHomeFolder',
              Effect: 'Allow',
              Action: 's3:ListBucket',
              Resource: bucketArn,
              Condition: { StringLike: { 's3:prefix': [this.homePrefix, `${this.homePrefix}*`] } },
            },
            {
              Sid: 'ReadWriteHomeFolder',
              Effect: 'Allow',
              Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:DeleteObject'],
              Resource: `${bucketArn}/${this.homePrefix}*`,
            },
          ],
        }),
      });
      // A logical home: the user sees "/" and cannot name anything outside its folder.
      const user = new TransferUser(this, 'user', {
        serverId: this.server.id,
        userName: sftp.userName,
        role: userRole.arn,
        homeDirectoryType: 'LOGICAL',
        homeDirectoryMappings: [{ entry: '/', target: `/${bucketName}/${sftp.userName}` }],
      });
      sftp.publicKeys.forEach((body, i) => {
        new TransferSshKey(this, `user-key-${i}`, { serverId: this.server!.id, userName: user.userName, body });
      });
      // The home folder exists from day one, so a first listing finds an empty folder, not an error.
      new S3Object(this, 'home-folder', { bucket: bucketName, key: this.homePrefix, content: '' });

      const endpoint = new DataAwsVpcEndpoint(this, 'server-endpoint', { id: this.server.endpointDetails.vpcEndpointId });
      this.host = Fn.lookup(Fn.element(endpoint.dnsEntry, 0), 'dns_name', '');
      this.port = 22;
      // Transfer reports the fingerprint like ssh-keygen -l; keep just the `SHA256:...` token tasks compare.
      this.hostKeyFingerprints = Fn.try([Fn.regex('SHA256:[A-Za-z0-9+/]{43}', this.server.hostKeyFingerprint), this.server.hostKeyFingerprint]);

      new TerraformOutput(this, 'sftp_server_id', { value: this.server.id });
      new TerraformOutput(this, 'sftp_bucket_name', { value: bucketName, description: 'Bucket behind the SFTP server (lab output)' });
      new TerraformOutput(this, 'sftp_home_prefix', { value: this.homePrefix });
    }

    new TerraformOutput(this, 'sftp_endpoint', { value: this.host, description: 'Host name tasks connect to' });
    new TerraformOutput(this, 'sftp_port', { value: this.port });
    new TerraformOutput(this, 'sftp_user', { value: this.userName, description: 'SFTP user (lab output)' });
    new TerraformOutput(this, 'sftp_host_key_fingerprint', { value: this.hostKeyFingerprints, description: 'Host-key fingerprint(s) tasks verify' });
    new TerraformOutput(this, 'sftp_private_key_secret_arn', { value: this.privateKeySecret.arn });
  }
}

/** Trust for transfer.amazonaws.com on behalf of `sourceArn` in this account only (confused-deputy guard). */
function transferTrust(accountId: string, sourceArn: string): string {
  const condition = { StringEquals: { 'aws:SourceAccount': accountId }, ArnLike: { 'aws:SourceArn': sourceArn } };
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: 'transfer.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: condition }],
  });
}
