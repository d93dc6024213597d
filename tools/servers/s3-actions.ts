/**
 * Which S3 API operation an HTTP request is, and which IAM authorization requests AWS makes for it
 * (action, resource ARN, condition keys). Shared by the S3 stand-in (s3-standin.ts) and by anything
 * that wants to authorize an S3 call against IAM policies (tools/review `simulate`).
 *
 * Path-style requests only (`/bucket/key`), as the SDK sends them with forcePathStyle.
 */

export type S3Operation =
  | 'ListBuckets'
  | 'CreateBucket'
  | 'HeadBucket'
  | 'DeleteBucket'
  | 'ListObjectsV2'
  | 'ListObjects'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'CopyObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'Unsupported';

export interface S3Call {
  readonly operation: S3Operation;
  readonly method: string;
  readonly bucket?: string;
  readonly key?: string;
  readonly uploadId?: string;
  readonly partNumber?: string;
  readonly query: URLSearchParams;
  /** Lower-case header names, as Node gives them. */
  readonly headers: Record<string, string | string[] | undefined>;
}

/** One authorization request, as the IAM simulator takes it. */
export interface S3AuthRequest {
  readonly action: string;
  readonly resource: string;
  /** Condition keys present in the request (keys absent from the request are left out, as in IAM). */
  readonly context: Record<string, string | string[]>;
}

export class S3RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Splits `/bucket/key?query` without URL normalisation (a key may hold `..`, `//` or `%2F`). */
export function classify(method: string, rawUrl: string, headers: S3Call['headers']): S3Call {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  let bucket: string | undefined;
  let key: string | undefined;
  try {
    const rest = rawPath.replace(/^\//, '');
    const slash = rest.indexOf('/');
    bucket = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash)) || undefined;
    const rawKey = slash < 0 ? '' : rest.slice(slash + 1);
    key = rawKey ? decodeURIComponent(rawKey) : undefined;
  } catch {
    throw new S3RequestError(400, 'InvalidURI', `Couldn't parse the specified URI: ${rawPath}`);
  }
  const has = (name: string) => query.has(name);
  // The SDK adds x-id=<Operation> to some requests; S3 ignores it.
  const names = [...query.keys()].filter((k) => k !== 'x-id');
  const call = (operation: S3Operation) => ({
    operation,
    method,
    bucket,
    key,
    uploadId: query.get('uploadId') ?? undefined,
    partNumber: query.get('partNumber') ?? undefined,
    query,
    headers,
  });
  if (!bucket) return call(method === 'GET' ? 'ListBuckets' : 'Unsupported');
  if (key === undefined) {
    if (method === 'PUT' && names.length === 0) return call('CreateBucket');
    if (method === 'HEAD') return call('HeadBucket');
    if (method === 'DELETE' && names.length === 0) return call('DeleteBucket');
    if (method === 'POST' && has('delete')) return call('DeleteObjects');
    if (method === 'GET' && has('uploads')) return call('ListMultipartUploads');
    if (method === 'GET' && query.get('list-type') === '2') return call('ListObjectsV2');
    // Any other bucket sub-resource (?acl, ?policy, ?versioning...) is not emulated.
    if (method === 'GET' && !names.some((k) => !['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'].includes(k))) return call('ListObjects');
    return call('Unsupported');
  }
  const copy = headers['x-amz-copy-source'] !== undefined;
  if (method === 'GET' && has('uploadId')) return call('ListParts');
  if (method === 'GET' && names.every((k) => k.startsWith('response-') || k === 'partNumber' || k === 'versionId')) return call('GetObject');
  if (method === 'HEAD') return call('HeadObject');
  if (method === 'PUT' && has('uploadId') && has('partNumber')) return call(copy ? 'UploadPartCopy' : 'UploadPart');
  if (method === 'PUT' && names.length === 0) return call(copy ? 'CopyObject' : 'PutObject');
  if (method === 'POST' && has('uploads')) return call('CreateMultipartUpload');
  if (method === 'POST' && has('uploadId')) return call('CompleteMultipartUpload');
  if (method === 'DELETE' && has('uploadId')) return call('AbortMultipartUpload');
  if (method === 'DELETE' && names.every((k) => k === 'versionId')) return call('DeleteObject');
  return call('Unsupported');
}

export const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;

function header(call: S3Call, name: string): string | undefined {
  const v = call.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * Context keys every request carries. The SDK talks TLS to real S3 (the stand-in's plain HTTP is
 * a test artefact), so aws:SecureTransport is what production sends.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html
 */
function commonContext(call: S3Call): Record<string, string> {
  const ctx: Record<string, string> = { 'aws:SecureTransport': 'true', 's3:authType': 'REST-HEADER', 's3:signatureversion': 'AWS4-HMAC-SHA256' };
  const sha = header(call, 'x-amz-content-sha256');
  if (sha) ctx['s3:x-amz-content-sha256'] = sha;
  return ctx;
}

/** Condition keys of object writes that are present in the request. */
function writeContext(call: S3Call): Record<string, string> {
  const ctx = commonContext(call);
  for (const [h, k] of [
    ['x-amz-acl', 's3:x-amz-acl'],
    ['x-amz-server-side-encryption', 's3:x-amz-server-side-encryption'],
    ['x-amz-server-side-encryption-aws-kms-key-id', 's3:x-amz-server-side-encryption-aws-kms-key-id'],
    ['x-amz-storage-class', 's3:x-amz-storage-class'],
    ['x-amz-object-lock-mode', 's3:object-lock-mode'],
    // Bucket policies can require conditional writes with these two keys:
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
    ['if-none-match', 's3:if-none-match'],
    ['if-match', 's3:if-match'],
  ]) {
    const v = header(call, h);
    if (v !== undefined) ctx[k] = v;
  }
  return ctx;
}

/**
 * The authorization requests AWS makes for one call (most need one; a write with If-Match also
 * needs s3:GetObject, a copy also needs s3:GetObject on its source). Action names and resources per
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html and
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
 */
export function authRequests(call: S3Call): S3AuthRequest[] {
  const { bucket = '', key = '' } = call;
  const onBucket = (action: string, context = commonContext(call)): S3AuthRequest => ({ action, resource: bucketArn(bucket), context });
  const onObject = (action: string, context = commonContext(call)): S3AuthRequest => ({ action, resource: objectArn(bucket, key), context });
  // "To perform a conditional write with If-Match you must have s3:PutObject and s3:GetObject":
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
  // s3:ObjectCreationOperation tells the request that creates the object (true) from the multipart steps
  // that cannot carry a condition (false): https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
  const creates = !['CreateMultipartUpload', 'UploadPart', 'UploadPartCopy'].includes(call.operation);
  const write = (): S3AuthRequest[] => [
    onObject('s3:PutObject', { ...writeContext(call), 's3:ObjectCreationOperation': String(creates) }),
    ...(header(call, 'if-match') !== undefined ? [onObject('s3:GetObject')] : []),
  ];
  switch (call.operation) {
    case 'ListBuckets':
      return [{ action: 's3:ListAllMyBuckets', resource: '*', context: commonContext(call) }];
    case 'CreateBucket':
      return [onBucket('s3:CreateBucket')];
    case 'DeleteBucket':
      return [onBucket('s3:DeleteBucket')];
    case 'HeadBucket':
      return [onBucket('s3:ListBucket')];
    case 'ListObjectsV2':
    case 'ListObjects': {
      // s3:prefix is always present for ListBucket (empty when no prefix is given).
      const context: Record<string, string> = { ...commonContext(call), 's3:prefix': call.query.get('prefix') ?? '' };
      if (call.query.has('delimiter')) context['s3:delimiter'] = call.query.get('delimiter')!;
      context['s3:max-keys'] = call.query.get('max-keys') ?? '1000';
      return [onBucket('s3:ListBucket', context)];
    }
    case 'ListMultipartUploads':
      return [onBucket('s3:ListBucketMultipartUploads')];
    case 'GetObject':
    case 'HeadObject':
      return [onObject('s3:GetObject')];
    case 'PutObject':
    case 'CreateMultipartUpload':
    case 'UploadPart':
    case 'CompleteMultipartUpload':
      return write();
    case 'CopyObject':
    case 'UploadPartCopy': {
      const src = decodeURIComponent(
        String(header(call, 'x-amz-copy-source') ?? '')
          .replace(/^\//, '')
          .split('?')[0],
      );
      return [...write(), { action: 's3:GetObject', resource: `arn:aws:s3:::${src}`, context: commonContext(call) }];
    }
    case 'AbortMultipartUpload':
      return [onObject('s3:AbortMultipartUpload')];
    case 'ListParts':
      return [onObject('s3:ListMultipartUploadParts')];
    case 'DeleteObject':
      return [onObject('s3:DeleteObject')];
    case 'DeleteObjects':
      // Authorized per key once the body is read; the bucket-level request is not an IAM action.
      return [];
    case 'Unsupported':
      return [];
  }
}
