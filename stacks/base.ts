// Common ground of every stack: the AWS provider with default tags, and the state backend
// (local by default, S3 with a lockfile when configured).
import * as path from 'node:path';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { LocalBackend, S3Backend, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineConfig } from './config';

export interface PipelineStackProps {
  readonly config: PipelineConfig;
}

export class PipelineStack extends TerraformStack {
  readonly config: PipelineConfig;
  readonly provider: AwsProvider;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id);
    this.config = props.config;
    const { namePrefix, stage, region, stateBackend } = props.config;

    this.provider = new AwsProvider(this, 'aws', {
      region,
      defaultTags: [{ tags: { project: namePrefix, stage, 'managed-by': 'cdktf', stack: id } }],
    });

    if (stateBackend.kind === 's3') {
      const backend = new S3Backend(this, {
        bucket: stateBackend.bucket,
        key: `${stateBackend.keyPrefix}/${id}.tfstate`,
        region: stateBackend.region,
        encrypt: true,
      });
      // Terraform >= 1.10 locks with an S3 lockfile; cdktf 0.21 has no typed property for it yet.
      backend.addOverride('use_lockfile', true);
    } else {
      // Stage in the file name so two stages on one machine never share state.
      new LocalBackend(this, { path: path.join(process.cwd(), `terraform.${namePrefix}-${stage}.${id}.tfstate`) });
    }
  }

  /** `${namePrefix}-${stage}`: this deployment's name (also the `Pipeline` dimension of its metrics, contract C1). */
  get pipelineName(): string {
    return `${this.config.namePrefix}-${this.config.stage}`;
  }

  /** `${namePrefix}-${stage}-${suffix}`: the name of a resource of this app. */
  name(suffix: string): string {
    return `${this.pipelineName}-${suffix}`;
  }
}
