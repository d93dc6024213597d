// An S3 bucket as every bucket of this app must be: all four public-access blocks, owner-enforced
// object ownership (no ACLs), default encryption, versioning, TLS-only access, and lifecycle rules that
// clean up incomplete multipart uploads and old versions.
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { Construct } from 'constructs';

export interface SecureBucketProps {
  /** Bucket name prefix; Terraform appends a unique suffix (names are global). Max 37 characters. */
  readonly bucketPrefix: string;
  /** Days before noncurrent object versions expire. @default 30 */
  readonly noncurrentVersionDays?: number;
  /** Days before incomplete multipart uploads are aborted. @default 1 */
  readonly abortIncompleteUploadDays?: number;
  /**
   * Destroy deletes every object version first. S3 deletes only an empty bucket (all versions and delete
   * markers gone: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html); Terraform's
   * force_destroy empties it (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/s3_bucket#force_destroy).
   * From config.forceDestroy: off for a production-like stage.
   */
  readonly forceDestroy: boolean;
}

export class SecureBucket extends Construct {
  readonly bucket: S3Bucket;
  readonly policy: S3BucketPolicy;

  constructor(scope: Construct, id: string, props: SecureBucketProps) {
    super(scope, id);
    if (props.bucketPrefix.length > 37) {
      throw new Error(`SecureBucket ${id}: bucketPrefix "${props.bucketPrefix}" is longer than 37 characters`);
    }
    const noncurrentDays = props.noncurrentVersionDays ?? 30;
    const abortDays = props.abortIncompleteUploadDays ?? 1;

    this.bucket = new S3Bucket(this, 'bucket', { bucketPrefix: props.bucketPrefix, forceDestroy: props.forceDestroy });
    const bucket = this.bucket.id;

    new S3BucketPublicAccessBlock(this, 'public-access-block', {
      bucket,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, 'ownership', {
      bucket,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    });
    // SSE-KMS with the AWS-managed key: no key policy to maintain, and S3 Bucket Keys keep KMS calls low.
    new S3BucketServerSideEncryptionConfigurationA(this, 'encryption', {
      bucket,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms' }, bucketKeyEnabled: true }],
    });
    new S3BucketVersioningA(this, 'versioning', {
      bucket,
      versioningConfiguration: { status: 'Enabled' },
    });
    new S3BucketLifecycleConfiguration(this, 'lifecycle', {
      bucket,
      rule: [
        {
          id: 'abort-incomplete-multipart-uploads',
          status: 'Enabled',
          filter: [{}],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: abortDays }],
        },
        {
          id: 'expire-noncurrent-versions',
          status: 'Enabled',
          filter: [{}],
          noncurrentVersionExpiration: [{ noncurrentDays }],
        },
      ],
    });
    this.policy = new S3BucketPolicy(this, 'tls-only', {
      bucket,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'DenyInsecureTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [this.bucket.arn, `${this.bucket.arn}/*`],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      }),
    });
  }
}
