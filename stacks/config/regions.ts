// The AWS Regions a stage may deploy to. Source: the Regions list in the AWS documentation
// (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html) and the partition
// data the AWS SDKs resolve endpoints from (@aws-sdk/core, util-endpoints partitions), which
// __tests__/stacks/config.test.ts holds this list to: a Region AWS adds fails that test until listed here.
// The stacks build ARNs with the partition data source, so every partition below works.
import { closest } from './suggest';

export const AWS_REGIONS: Record<string, readonly string[]> = {
  aws: [
    'af-south-1',
    'ap-east-1',
    'ap-east-2',
    'ap-northeast-1',
    'ap-northeast-2',
    'ap-northeast-3',
    'ap-south-1',
    'ap-south-2',
    'ap-southeast-1',
    'ap-southeast-2',
    'ap-southeast-3',
    'ap-southeast-4',
    'ap-southeast-5',
    'ap-southeast-6',
    'ap-southeast-7',
    'ca-central-1',
    'ca-west-1',
    'eu-central-1',
    'eu-central-2',
    'eu-north-1',
    'eu-south-1',
    'eu-south-2',
    'eu-west-1',
    'eu-west-2',
    'eu-west-3',
    'il-central-1',
    'me-central-1',
    'me-south-1',
    'me-west-1',
    'mx-central-1',
    'sa-east-1',
    'sa-west-1',
    'us-east-1',
    'us-east-2',
    'us-west-1',
    'us-west-2',
  ],
  'aws-cn': ['cn-north-1', 'cn-northwest-1'],
  'aws-us-gov': ['us-gov-east-1', 'us-gov-west-1'],
  'aws-eusc': ['eusc-de-east-1'],
  'aws-iso': ['us-iso-east-1', 'us-iso-west-1'],
  'aws-iso-b': ['us-isob-east-1', 'us-isob-west-1'],
  'aws-iso-e': ['eu-isoe-west-1'],
  'aws-iso-f': ['us-isof-east-1', 'us-isof-south-1'],
};

const ALL = new Set(Object.values(AWS_REGIONS).flat());

/** Why `region` is not a Region name AWS knows, or undefined. */
export function regionProblem(region: string): string | undefined {
  if (ALL.has(region)) return undefined;
  const near = closest(region, [...ALL]);
  return `"${region}" is not an AWS Region${near ? ` (did you mean ${near}?)` : ''}; see https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html`;
}
