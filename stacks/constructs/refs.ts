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

/**
 * Why `inputPrefixes` cannot be used with `layout`, or undefined: the converter reads the input
 * prefixes, so none may hold (or lie inside) what the pipeline writes, and scheduled runs convert
 * what the lister lands.
 */
export function inputPrefixesProblem(inputPrefixes: readonly string[], layout: DataLayout): string | undefined {
  const reserved: [string, string][] = [
    ['outputPrefix', layout.outputPrefix],
    ['manifestPrefix', layout.manifestPrefix],
    ['resultPrefix', layout.resultPrefix],
    ["the lister's index prefix", layout.listerStatePrefix],
  ];
  for (const p of inputPrefixes) {
    for (const [name, other] of reserved) {
      if (other.startsWith(p) || p.startsWith(other))
        return `"${p}" and ${name} "${other}" must not contain one another (the converter would read what the pipeline writes)`;
    }
  }
  if (!inputPrefixes.some((p) => layout.ingestPrefix.startsWith(p)))
    return `[${inputPrefixes.join(', ')}] must include the lister's landing prefix "${layout.ingestPrefix}" (scheduled runs convert what it lands)`;
  return undefined;
}

/** The state machine's name suffix; the ingest and batch stacks both derive its ARN from it. */
export const STATE_MACHINE_SUFFIX = 'pipeline';
