// The whole app: offline `terraform validate` of every stack without the docker provider (default and
// a maximal configuration), default tags and state backends on every stack.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTerraform, validateStack } from '../../scripts/terraform';
import { listStacks } from '../../tools/tf-json';
import { synthesize } from './synth';

const VALIDATED = ['network', 'sftp', 'cluster'] as const;
// terraform loads the 675 MB AWS provider per run: allow for a busy 2-core machine.
const TF_TIMEOUT = 300_000;

describe('terraform validate, offline', () => {
  test('GIVEN this machine WHEN looking for terraform THEN it is on PATH (the suite validates for real, never skips)', () => {
    expect(findTerraform()).toBeDefined();
  });

  test(
    'GIVEN the default configuration WHEN validated THEN network, sftp and cluster are valid Terraform',
    async () => {
      const { stacks } = synthesize();
      const results = await Promise.all(VALIDATED.map((s) => validateStack(stacks[s].dir)));
      expect(Object.fromEntries(VALIDATED.map((s, i) => [s, results[i]]))).toEqual({
        network: { valid: true },
        sftp: { valid: true },
        cluster: { valid: true },
      });
    },
    TF_TIMEOUT,
  );

  test(
    'GIVEN NAT, 3 AZs, an external SFTP host, ARM64 and the S3 backend WHEN validated THEN all three are valid',
    async () => {
      const { stacks } = synthesize({
        env: {
          PIPELINE_NAT: 'true',
          PIPELINE_AZ_COUNT: '3',
          PIPELINE_SFTP_SOURCE: 'external',
          PIPELINE_SFTP_HOST: '203.0.113.10',
          PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: 'SHA256:' + 'k'.repeat(43),
          PIPELINE_CPU_ARCHITECTURE: 'ARM64',
          PIPELINE_STATE_BUCKET: 'acme-terraform-state',
        },
      });
      const results = await Promise.all(VALIDATED.map((s) => validateStack(stacks[s].dir)));
      expect(results).toEqual([{ valid: true }, { valid: true }, { valid: true }]);
    },
    TF_TIMEOUT,
  );

  test(
    'GIVEN a stack with a wrong attribute WHEN validated THEN the error is reported (validation is not a no-op)',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h1-invalid-'));
      try {
        fs.writeFileSync(
          path.join(dir, 'cdk.tf.json'),
          JSON.stringify({
            terraform: { required_providers: { aws: { source: 'aws', version: '5.100.0' } } },
            provider: { aws: [{ region: 'us-east-1' }] },
            resource: { aws_vpc: { v: { cidr_block: '10.0.0.0/16', enable_dns_hostname: true } } },
          }),
        );
        const result = await validateStack(dir);
        expect(result.valid).toBe(false);
        expect(result.error).toMatch(/No argument or block type is named "enable_dns_hostname"/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    TF_TIMEOUT,
  );
});

describe('every stack', () => {
  test('GIVEN defaults WHEN synthesized THEN every stack tags all resources with project and stage via the provider', () => {
    const { outdir } = synthesize({ env: { PIPELINE_NAME_PREFIX: 'acme', PIPELINE_STAGE: 'qa' } });
    const listed = listStacks(outdir);
    const order = listed.map((s) => s.name);
    expect(order).toEqual(expect.arrayContaining(['cluster', 'images', 'network', 'sftp']));
    // deploy order: every stack after what it reads from
    expect(order.indexOf('network')).toBeLessThan(order.indexOf('sftp'));
    expect(order.indexOf('cluster')).toBeLessThan(order.indexOf('images'));
    for (const s of listed) {
      expect(s.resourceCount).toBeGreaterThan(0);
      const provider = s.json.provider!.aws[0];
      expect(provider.default_tags[0].tags).toMatchObject({ project: 'acme', stage: 'qa' });
    }
  });

  test('GIVEN a state bucket WHEN synthesized THEN every stack uses the S3 backend with a lockfile, and cross-stack reads use it too', () => {
    const { stacks } = synthesize({ env: { PIPELINE_STATE_BUCKET: 'acme-tf', PIPELINE_STATE_REGION: 'eu-west-1', PIPELINE_STAGE: 'prod' } });
    for (const [name, stack] of Object.entries(stacks)) {
      expect(stack.json.terraform.backend).toEqual({
        s3: { bucket: 'acme-tf', key: `xmlpipe/prod/${name}.tfstate`, region: 'eu-west-1', encrypt: true, use_lockfile: true },
      });
    }
    const remote = stacks.sftp.json.data?.terraform_remote_state['cross-stack-reference-input-network'];
    expect(remote).toMatchObject({ backend: 's3', config: { bucket: 'acme-tf', key: 'xmlpipe/prod/network.tfstate', region: 'eu-west-1' } });
  });

  test('GIVEN the default graph WHEN synthesized THEN sftp depends on network and images on cluster only', () => {
    const { stacks } = synthesize();
    const inputs = (s: keyof typeof stacks) => Object.keys(stacks[s].json.data?.terraform_remote_state ?? {}).sort();
    expect(inputs('network')).toEqual([]);
    expect(inputs('cluster')).toEqual([]);
    expect(inputs('sftp')).toEqual(['cross-stack-reference-input-network']);
    expect(inputs('images')).toEqual(['cross-stack-reference-input-cluster']);
  });
});
