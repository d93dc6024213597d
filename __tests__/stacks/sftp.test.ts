// sftp stack: the managed Transfer server (VPC endpoint, policy, logging, user confined to its home),
// its bucket's baseline, the value-less private-key secret; and the external-host variant.
import { TRANSFER_SECURITY_POLICY } from '../../stacks/sftp';
import { policy, synthesize, TEST_PUBLIC_KEY } from './synth';

const ref = (type: string, name: string, attr = 'id') => `\${${type}.${name}.${attr}}`;

describe('sftp with the managed Transfer Family server', () => {
  const { stacks } = synthesize({ env: { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY, PIPELINE_SFTP_ALLOWED_CIDRS: '192.168.10.0/24' } });
  const sftp = stacks.sftp;
  const bucketName = Object.keys(sftp.resources('aws_s3_bucket'))[0];
  const bucketArn = ref('aws_s3_bucket', bucketName, 'arn');

  test('GIVEN defaults WHEN synthesized THEN the server is SFTP-only on an internal VPC endpoint in the private subnets', () => {
    const server = sftp.only('aws_transfer_server');
    expect(server).toMatchObject({
      endpoint_type: 'VPC',
      protocols: ['SFTP'],
      domain: 'S3',
      identity_provider_type: 'SERVICE_MANAGED',
    });
    expect(server.endpoint_details.address_allocation_ids).toBeUndefined(); // no EIPs: not internet-facing
    expect(server.endpoint_details.subnet_ids).toHaveLength(2);
    for (const s of server.endpoint_details.subnet_ids)
      expect(s).toMatch(/^\$\{data\.terraform_remote_state\.cross-stack-reference-input-network\.outputs\..*private-\d/);
    expect(server.endpoint_details.security_group_ids).toEqual([ref('aws_security_group', 'server-sg')]);
  });

  test('THEN it uses a 2024-01 or newer security policy', () => {
    const name: string = sftp.only('aws_transfer_server').security_policy_name;
    expect(name).toBe(TRANSFER_SECURITY_POLICY);
    expect(
      name
        .match(/^TransferSecurityPolicy-(\d{4})-(\d{2})$/)!
        .slice(1)
        .join('-') >= '2024-01',
    ).toBe(true);
  });

  test('THEN structured logs go to a retained log group, with no logging role (that is for legacy logs and workflows)', () => {
    // A logging role makes Transfer write legacy logs to /aws/transfer/<server-id>, a group this app
    // neither creates nor retains; structured logs are delivered to structured_log_destinations.
    const server = sftp.only('aws_transfer_server');
    expect(server.structured_log_destinations).toEqual([`${ref('aws_cloudwatch_log_group', 'transfer-logs', 'arn')}:*`]);
    expect(server.logging_role).toBeUndefined();
    expect(server.workflow_details).toBeUndefined();
    expect(sftp.only('aws_cloudwatch_log_group')).toMatchObject({ name: '/aws/transfer/xmlpipe-dev-sftp', retention_in_days: 30 });
    expect(Object.keys(sftp.resources('aws_iam_role'))).toEqual(['user-role']);
    expect(Object.keys(sftp.resources('aws_iam_role_policy'))).toEqual(['user-policy']);
  });

  test('THEN port 22 is open only to the VPC and the configured private network', () => {
    const rules = Object.values(sftp.resources('aws_vpc_security_group_ingress_rule'));
    expect(rules.map((r) => [r.from_port, r.to_port, r.cidr_ipv4, r.security_group_id])).toEqual([
      [22, 22, '10.20.0.0/16', ref('aws_security_group', 'server-sg')],
      [22, 22, '192.168.10.0/24', ref('aws_security_group', 'server-sg')],
    ]);
  });

  test('THEN user sftpuser has a logical home at its folder and the configured key', () => {
    expect(sftp.only('aws_transfer_user')).toMatchObject({
      user_name: 'sftpuser',
      server_id: ref('aws_transfer_server', 'server'),
      role: ref('aws_iam_role', 'user-role', 'arn'),
      home_directory_type: 'LOGICAL',
      home_directory_mappings: [{ entry: '/', target: `/${ref('aws_s3_bucket', bucketName)}/sftpuser` }],
    });
    expect(sftp.only('aws_transfer_ssh_key')).toMatchObject({ body: TEST_PUBLIC_KEY, user_name: '${aws_transfer_user.user.user_name}' });
    expect(sftp.only('aws_s3_object')).toMatchObject({ key: 'sftpuser/', content: '' });
  });

  test("THEN the user's role reaches only its home folder, and only this server's users can assume it", () => {
    const statements = policy(sftp.resources('aws_iam_role_policy')['user-policy'].policy).Statement;
    expect(statements).toEqual([
      {
        Sid: 'ListHomeFolder',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['sftpuser/', 'sftpuser/*'] } },
      },
      {
        Sid: 'ReadWriteHomeFolder',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:DeleteObject'],
        Resource: `${bucketArn}/sftpuser/*`,
      },
    ]);
    const trust = policy(sftp.resources('aws_iam_role')['user-role'].assume_role_policy).Statement[0];
    expect(trust.Principal).toEqual({ Service: 'transfer.amazonaws.com' });
    expect(trust.Condition.ArnLike['aws:SourceArn']).toBe(
      'arn:${data.aws_partition.partition.partition}:transfer:us-east-1:${data.aws_caller_identity.account.account_id}:user/${aws_transfer_server.server.id}/*',
    );
  });

  test('THEN the bucket blocks all public access, is encrypted, versioned, owner-enforced and TLS-only', () => {
    expect(sftp.only('aws_s3_bucket')).toMatchObject({ bucket_prefix: 'xmlpipe-dev-sftp-', force_destroy: true });
    expect(sftp.only('aws_s3_bucket_public_access_block')).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(sftp.only('aws_s3_bucket_server_side_encryption_configuration').rule).toEqual([
      { apply_server_side_encryption_by_default: { sse_algorithm: 'aws:kms' }, bucket_key_enabled: true },
    ]);
    expect(sftp.only('aws_s3_bucket_versioning').versioning_configuration).toEqual({ status: 'Enabled' });
    expect(sftp.only('aws_s3_bucket_ownership_controls').rule).toEqual({ object_ownership: 'BucketOwnerEnforced' });
    const tls = policy(sftp.only('aws_s3_bucket_policy').policy).Statement;
    expect(tls).toEqual([
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    ]);
    const rules = sftp.only('aws_s3_bucket_lifecycle_configuration').rule;
    expect(rules.map((r: any) => r.id)).toEqual(['abort-incomplete-multipart-uploads', 'expire-noncurrent-versions']);
    expect(rules[0].abort_incomplete_multipart_upload).toEqual([{ days_after_initiation: 1 }]);
  });

  test('THEN the private-key secret exists with NO value in Terraform', () => {
    expect(sftp.only('aws_secretsmanager_secret')).toMatchObject({ description: expect.stringContaining('sftpuser') });
    expect(sftp.resources('aws_secretsmanager_secret_version')).toEqual({});
    const text = JSON.stringify(sftp.json);
    expect(text).not.toMatch(/secret_string|secret_binary|PRIVATE KEY/);
  });

  test('THEN the dev secret is deleted at once on destroy, under a unique name so a redeploy after destroy is not blocked', () => {
    // Teardown defaults by stage are in teardown.test.ts; the unique suffix matters for a stage with a window.
    const secret = sftp.only('aws_secretsmanager_secret');
    expect(secret.recovery_window_in_days).toBe(0);
    expect(secret.name).toBeUndefined();
    expect(secret.name_prefix).toBe('xmlpipe/dev/sftp-private-key-');
  });

  test('THEN endpoint, user, bucket and host-key fingerprint are exported', () => {
    const out = sftp.json.output!;
    expect(out.sftp_user.value).toBe('sftpuser');
    expect(out.sftp_bucket_name.value).toBe(ref('aws_s3_bucket', bucketName));
    expect(out.sftp_port.value).toBe(22);
    expect(out.sftp_endpoint.value).toBe('${element(data.aws_vpc_endpoint.server-endpoint.dns_entry, 0).dns_name}');
    expect(sftp.json.data?.aws_vpc_endpoint['server-endpoint'].id).toBe('${aws_transfer_server.server.endpoint_details[0].vpc_endpoint_id}');
    expect(out.sftp_host_key_fingerprint.value).toContain('aws_transfer_server.server.host_key_fingerprint');
    expect(out.sftp_private_key_secret_arn.value).toBe(ref('aws_secretsmanager_secret', 'private-key', 'arn'));
  });
});

describe('sftp with an external host', () => {
  const fingerprints = ['SHA256:' + 'a'.repeat(43), 'SHA256:' + 'b'.repeat(43)];
  const { stacks, infra } = synthesize({
    env: {
      PIPELINE_NAT: 'true',
      PIPELINE_SFTP_SOURCE: 'external',
      PIPELINE_SFTP_HOST: 'sftp.partner.example',
      PIPELINE_SFTP_USER: 'ingest',
      PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: fingerprints.join(','),
    },
  });

  test('GIVEN an external host WHEN synthesized THEN no Transfer server or bucket is created, only the secret', () => {
    expect(Object.keys(stacks.sftp.json.resource ?? {})).toEqual(['aws_secretsmanager_secret']);
    expect(stacks.sftp.json.data?.terraform_remote_state).toBeUndefined();
  });

  test('THEN the configured host, user and fingerprints are exported for the tasks', () => {
    const out = stacks.sftp.json.output!;
    expect(out.sftp_endpoint.value).toBe('sftp.partner.example');
    expect(out.sftp_user.value).toBe('ingest');
    expect(out.sftp_host_key_fingerprint.value).toBe(fingerprints.join(','));
    expect(infra.sftp.hostKeyFingerprints).toBe(fingerprints.join(','));
  });
});
