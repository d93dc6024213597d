// Resource names: the configuration checks every name the app derives from namePrefix and stage against
// AWS's own rules (stacks/config/names.ts NAME_RULES). These tests hold the list of derived names to what the
// stacks really synthesize, and each rule to the cases AWS documents.
import { derivedNames, NAME_RULES, NameRuleId } from '../../stacks/config';
import { readStack, synthesize } from './synth';

const STACKS = ['network', 'sftp', 'cluster', 'images', 'ingest', 'batch', 'monitoring'];
// Arguments that carry an AWS name (bucket_prefix/name_prefix: Terraform appends a unique suffix).
const NAME_ARGS = ['name', 'name_prefix', 'bucket', 'bucket_prefix', 'family', 'alarm_name', 'dashboard_name'];

/** Every `type.argument = value` of the synthesized app whose value is built from namePrefix. */
function synthesizedNames(outdir: string, namePrefix: string): string[] {
  const out: string[] = [];
  for (const stack of STACKS) {
    for (const [type, byName] of Object.entries(readStack(outdir, stack).json.resource ?? {})) {
      for (const block of Object.values(byName as Record<string, Record<string, unknown>>)) {
        for (const arg of NAME_ARGS) {
          const v = block[arg];
          if (typeof v === 'string' && v.includes(namePrefix)) out.push(`${type}.${arg} = ${v}`);
        }
      }
    }
  }
  return out.sort();
}

describe('derived names', () => {
  test.each([
    ['the default app', {}],
    [
      'an external SFTP host, prod, another prefix',
      {
        PIPELINE_NAME_PREFIX: 'acme-data',
        PIPELINE_STAGE: 'prod',
        PIPELINE_NAT: 'true',
        PIPELINE_SFTP_SOURCE: 'external',
        PIPELINE_SFTP_HOST: 'sftp.example.com',
        PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: 'SHA256:' + 'k'.repeat(43),
      },
    ],
  ])('GIVEN %s WHEN synthesized THEN every name built from namePrefix is one the configuration checks', (_name, env) => {
    const { outdir, config } = synthesize({ env });
    const checked = new Set(derivedNames(config.namePrefix, config.stage).map((n) => `${n.resource}.${n.argument} = ${n.value}`));
    const synthesized = synthesizedNames(outdir, config.namePrefix);
    expect(synthesized.length).toBeGreaterThan(15);
    expect(synthesized.filter((n) => !checked.has(n))).toEqual([]);
  });
});

describe('naming rules, as AWS documents them', () => {
  const cases: [NameRuleId, string, RegExp | undefined][] = [
    ['s3Bucket', 'acme-terraform-state', undefined],
    ['s3Bucket', 'ab', /3-63 characters/],
    ['s3Bucket', 'logs-s3alias', /must not end with "-s3alias"/],
    ['s3Bucket', 'logs--ol-s3', /must not end with "--ol-s3"/],
    ['s3Bucket', 'logs.mrap', /must not end with ".mrap"/],
    ['s3Bucket', 'logs--x-s3', /must not end with "--x-s3"/],
    ['s3Bucket', 'logs--table-s3', /must not end with "--table-s3"/],
    ['s3Bucket', 'sthree-configurator', /must not start with "sthree-"/],
    ['s3Bucket', '192.168.5.4', /formatted as an IP address/],
    ['s3Bucket', 'logs-', /begin and end with a letter or digit/],
    ['s3BucketPrefix', 'xmlpipe-dev-xml-', undefined],
    ['s3BucketPrefix', 'xn--ab-dev-xml-', /must not start with "xn--"/],
    ['s3BucketPrefix', 'a'.repeat(38), /3-63 characters/],
    ['s3BucketPrefix', 'ab..cd-', /two adjacent periods/],
    ['s3BucketPrefix', 'Ab-', /lower-case letters, digits, periods and hyphens/],
    ['ecrRepository', 'xmlpipe-dev/converter', undefined],
    ['ecrRepository', 'a--b/converter', /separated by one/],
    ['ecrRepository', 'a-/converter', /separated by one/],
    ['iamRole', 'r'.repeat(64), undefined],
    ['iamRole', 'r'.repeat(65), /1-64 characters/],
    ['securityGroup', 'sg-tasks', /must not start with "sg-"/],
    ['ecsName', 'a_b-C1', undefined],
    ['ecsName', 'a.b', /letters, digits, hyphens and underscores/],
    ['logGroup', '/ecs/x#y', undefined],
    ['logGroup', 'aws/x', /must not start with "aws\/"/],
    ['ssmParameter', '/xmlpipe/dev/repo_uri_sftp', undefined],
    ['ssmParameter', '/SSM/dev/x', /"aws" or "ssm"/],
    ['ssmParameter', '/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p', /at most 15 levels/],
    ['secretPrefix', 'xmlpipe/dev/sftp-private-key-', undefined],
    ['secretPrefix', 'x y-', /letters, digits and/],
    ['dynamodbTable', 'ab', /3-255 characters/],
    ['stateMachine', 's'.repeat(81), /1-80 characters/],
    ['stateMachine', 'a.b', /letters, digits, hyphens and underscores/],
    ['sqsQueue', 'q'.repeat(81), /1-80 characters/],
    ['schedule', 'a:b', /letters, digits, hyphens, underscores and periods/],
    ['scheduleGroup', 'xmlpipe-dev-schedules', undefined],
    ['scheduleGroup', 'g'.repeat(65), /1-64 characters/],
    ['scheduleGroup', 'a/b', /letters, digits, hyphens, underscores and periods/],
    ['snsTopic', 'xmlpipe-dev-alarms', undefined],
    ['snsTopic', 'a.b', /letters, digits, hyphens and underscores/],
    ['kmsAlias', 'alias/xmlpipe-dev-alarms', undefined],
    ['kmsAlias', 'alias/aws/x', /must not start with "alias\/aws\/"/],
    ['kmsAlias', 'xmlpipe-dev-alarms', /"alias\/" then/],
    ['eventRule', 'r'.repeat(65), /1-64 characters/],
    ['alarm', 'a'.repeat(256), /1-255 characters/],
    ['alarm', 'a\tb', /control characters/],
    ['dashboard', 'a b', /letters, digits, hyphens and underscores/],
  ];
  test.each(cases)('GIVEN rule %s WHEN checking "%s" THEN %s', (rule, value, problem) => {
    const result = NAME_RULES[rule].check(value);
    if (problem) expect(result).toMatch(problem);
    else expect(result).toBeUndefined();
  });

  test('THEN every rule cites the AWS documentation', () => {
    for (const rule of Object.values(NAME_RULES)) expect(rule.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });
});
