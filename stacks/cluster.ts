// cluster: what the pipeline's tasks share: the ECS cluster (Fargate + Fargate Spot, Container
// Insights), their log groups, the two image repositories (with the lab's SSM parameters pointing at
// them) and the XML bucket the lister lands files in and the converter reads from and writes to.
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcrLifecyclePolicy } from '@cdktf/provider-aws/lib/ecr-lifecycle-policy';
import { EcrRepository } from '@cdktf/provider-aws/lib/ecr-repository';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { EcsClusterCapacityProviders } from '@cdktf/provider-aws/lib/ecs-cluster-capacity-providers';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter';
import { TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { SecureBucket } from './secure-bucket';

/** The two images: folder under images/, and the lab's SSM parameter name for its repository URI. */
export const IMAGES = {
  sftpLister: { dir: 'sftp-lister', ssmName: 'repo_uri_sftp' },
  converter: { dir: 'converter', ssmName: 'repo_uri_batch' },
} as const;
export type ImageName = keyof typeof IMAGES;

/** ECR lifecycle: untagged layers go after a week; the 30 newest images stay (older task definitions roll back). */
export const ECR_LIFECYCLE_POLICY = {
  rules: [
    {
      rulePriority: 1,
      description: 'Expire untagged images after 7 days',
      selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 },
      action: { type: 'expire' },
    },
    {
      rulePriority: 2,
      description: 'Keep the 30 newest images',
      selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 30 },
      action: { type: 'expire' },
    },
  ],
};

export class ClusterStack extends PipelineStack {
  readonly cluster: EcsCluster;
  readonly repositories: Record<ImageName, EcrRepository>;
  readonly logGroups: Record<ImageName, CloudwatchLogGroup>;
  /** Landing bucket of ingested XML files and of the JSON the converter writes (the lab's XML bucket). */
  readonly xmlBucket: SecureBucket;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { logRetentionDays, namePrefix, stage } = this.config;

    this.cluster = new EcsCluster(this, 'cluster', {
      name: this.name('cluster'),
      setting: [{ name: 'containerInsights', value: 'enabled' }],
    });
    new EcsClusterCapacityProviders(this, 'capacity-providers', {
      clusterName: this.cluster.name,
      capacityProviders: ['FARGATE', 'FARGATE_SPOT'],
      // On-demand by default; task launchers may opt into FARGATE_SPOT per run.
      defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1, base: 0 }],
    });

    const repositories = {} as Record<ImageName, EcrRepository>;
    const logGroups = {} as Record<ImageName, CloudwatchLogGroup>;
    for (const [name, image] of Object.entries(IMAGES) as [ImageName, (typeof IMAGES)[ImageName]][]) {
      const repo = new EcrRepository(this, `repo-${image.dir}`, {
        name: `${namePrefix}-${stage}/${image.dir}`,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: [{ encryptionType: 'AES256' }],
        // Destroy deletes the pushed images too (API_DeleteRepository "force":
        // https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html).
        forceDelete: this.config.forceDestroy,
      });
      new EcrLifecyclePolicy(this, `repo-${image.dir}-lifecycle`, {
        repository: repo.name,
        policy: JSON.stringify(ECR_LIFECYCLE_POLICY),
      });
      // The lab published repository URIs as SSM parameters; same leaf names, under this app's path.
      new SsmParameter(this, `ssm-${image.ssmName}`, {
        name: `/${namePrefix}/${stage}/${image.ssmName}`,
        type: 'String',
        value: repo.repositoryUrl,
        description: `ECR repository URI of the ${image.dir} image`,
      });
      logGroups[name] = new CloudwatchLogGroup(this, `logs-${image.dir}`, {
        name: `/ecs/${this.name(image.dir)}`,
        retentionInDays: logRetentionDays,
      });
      repositories[name] = repo;
      new TerraformOutput(this, `repo_uri_${image.dir.replace('-', '_')}`, { value: repo.repositoryUrl });
      new TerraformOutput(this, `log_group_${image.dir.replace('-', '_')}`, { value: logGroups[name].name });
    }
    this.repositories = repositories;
    this.logGroups = logGroups;

    this.xmlBucket = new SecureBucket(this, 'xml-bucket', { bucketPrefix: `${this.name('xml')}-`, forceDestroy: this.config.forceDestroy });

    new TerraformOutput(this, 'cluster_name', { value: this.cluster.name });
    new TerraformOutput(this, 'cluster_arn', { value: this.cluster.arn });
    new TerraformOutput(this, 'xml_bucket_name', { value: this.xmlBucket.bucket.id, description: 'XML bucket (lab output)' });
  }
}
