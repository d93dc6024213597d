// What the ingest and batch stacks need from the infrastructure stacks: structural types, so the
// stacks from app.ts fit and tests can pass their own stand-ins.

export interface NetworkRefs {
  readonly privateSubnets: { readonly id: string }[];
  /** No ingress; egress to the endpoints, S3 and the SFTP port. */
  readonly taskSecurityGroup: { readonly id: string };
}

export interface ClusterRefs {
  readonly cluster: { readonly arn: string; readonly name: string };
  readonly logGroups: Record<'sftpLister' | 'converter', { readonly name: string; readonly arn: string }>;
  readonly repositories: Record<'sftpLister' | 'converter', { readonly arn: string }>;
  /** The data bucket: ingested XML, JSON output, manifests, batch results. */
  readonly xmlBucket: { readonly bucket: { readonly id: string; readonly arn: string } };
}

export interface ImageRefs {
  /** `repo:tag@sha256:digest` per image. */
  readonly imageRefs: Record<'sftpLister' | 'converter', string>;
}

export interface SftpRefs {
  readonly host: string;
  readonly port: number;
  readonly userName: string;
  /** Comma-separated `SHA256:...`. */
  readonly hostKeyFingerprints: string;
  readonly privateKeySecret: { readonly arn: string };
}

/** Key prefixes in the data bucket; shared by the task roles, the state machine and its role. */
export interface DataLayout {
  /** Where the lister lands files. @default 'incoming/' */
  readonly ingestPrefix: string;
  /** Output key = outputPrefix + source key + '.json'. @default 'json/' */
  readonly outputPrefix: string;
  /** One manifest (JSON array of new keys) per ingest execution. @default 'manifests/' */
  readonly manifestPrefix: string;
  /** Converter summaries per batch and Distributed Map results. @default 'results/' */
  readonly resultPrefix: string;
  /** The lister's own index of what it ingested (its STATE_KEY lives here). @default '.sftp-lister/' */
  readonly listerStatePrefix: string;
}

export const DEFAULT_LAYOUT: DataLayout = {
  ingestPrefix: 'incoming/',
  outputPrefix: 'json/',
  manifestPrefix: 'manifests/',
  resultPrefix: 'results/',
  listerStatePrefix: '.sftp-lister/',
};

/** The state machine's name suffix; the ingest and batch stacks both derive its ARN from it. */
export const STATE_MACHINE_SUFFIX = 'pipeline';
