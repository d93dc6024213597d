// Network exposure as `npm run review` reports it: by default nothing is public; with NAT for an
// external SFTP host, exactly the internet path (gateway, NAT gateways and their IPs, default routes,
// SFTP egress to the host) is, and ingress stays private.
import { buildSecurityModel, networkExposure } from '../../tools/review';
import { readApp as readSynthesized } from '../../tools/tf-json';
import { synthesize, TEST_PUBLIC_KEY } from '../stacks/synth';

describe('network exposure', () => {
  test('GIVEN the defaults (managed Transfer server, no NAT) WHEN reviewed THEN nothing is public and every endpoint, rule and the server are listed', () => {
    const model = buildSecurityModel(readSynthesized(synthesize({ env: { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY } }).outdir));
    const items = networkExposure(model);
    expect(items.filter((i) => i.public)).toEqual([]);
    const kinds = (k: string) => items.filter((i) => i.kind === k).map((i) => i.detail);
    // S3 gateway + ECR api/dkr, Logs, Secrets Manager: no Step Functions or STS endpoint (nothing in the VPC calls them).
    expect(kinds('endpoint')).toHaveLength(5);
    expect(kinds('endpoint').filter((d) => /\.(states|sts)\b/.test(d))).toEqual([]);
    expect(kinds('ingress')).toEqual([
      expect.stringMatching(/^xmlpipe-dev-endpoints: tcp\/443 from 10\.20\.0\.0\/16/),
      expect.stringMatching(/^xmlpipe-dev-sftp-endpoint: tcp\/22 from 10\.20\.0\.0\/16/),
    ]);
    expect(kinds('transfer')).toEqual(['Transfer SFTP endpoint VPC, policy TransferSecurityPolicy-2024-01']);
    expect(kinds('default-sg')).toEqual(['default security group: no rules (closed)']);
    expect(kinds('tasks')).toEqual(['state machine starts tasks with AssignPublicIp DISABLED']);
  });

  test('GIVEN an external SFTP host with NAT WHEN reviewed THEN exactly the internet path is public, and no ingress', () => {
    const model = buildSecurityModel(
      readSynthesized(
        synthesize({
          env: {
            PIPELINE_SFTP_SOURCE: 'external',
            PIPELINE_NAT: 'true',
            PIPELINE_SFTP_HOST: 'sftp.example.com',
            PIPELINE_SFTP_PORT: '2222',
            PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'b'.repeat(43)}`,
          },
        }).outdir,
      ),
    );
    const items = networkExposure(model);
    const pub = items
      .filter((i) => i.public)
      .map((i) => `${i.kind}: ${i.detail}`)
      .sort();
    expect(pub).toEqual(
      [
        'egress: xmlpipe-dev-tasks: tcp/2222 to 0.0.0.0/0 (SFTP to the external host sftp.example.com through NAT)',
        'internet: Elastic IP nat-eip-0',
        'internet: Elastic IP nat-eip-1',
        'internet: NAT gateway nat-0 (egress only)',
        'internet: NAT gateway nat-1 (egress only)',
        'internet: internet gateway igw',
        'route: default route in public-default-route via internet gateway',
      ].sort(),
    );
    expect(items.filter((i) => i.kind === 'ingress' && i.public)).toEqual([]);
    expect(items.filter((i) => i.kind === 'transfer')).toEqual([]);
  });
});
