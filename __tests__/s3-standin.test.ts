// GIVEN the project's S3 stand-in (support/s3.ts -> s3-standin.ts) WHEN the real AWS SDK v3 client
// calls it THEN it keeps the rules AWS documents: atomic conditional writes, real aborts, authorization
// of every call, and the faults a test injects.
import { PassThrough } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { AuthorizeRequest, S3RVER_CREDENTIALS, S3Server, startS3 } from '../tools/servers/s3';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { authRequests, classify } from '../tools/servers/s3-actions';

const B = 'bucket';
const MiB = 1024 * 1024;
let s3: S3Server;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3([B]);
  client = s3.client();
});
afterAll(async () => {
  client.destroy();
  await s3.dispose();
});
afterEach(() => {
  s3.clearFaults();
  s3.authorize(undefined);
});

/** The S3 error a call failed with: name (code) and HTTP status. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected the call to fail, it succeeded');
}

const put = (key: string, body: string | Buffer, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}, c = client) =>
  c.send(new PutObjectCommand({ Bucket: B, Key: key, Body: body, ...extra }));
const text = async (key: string, c = client) => await (await c.send(new GetObjectCommand({ Bucket: B, Key: key }))).Body!.transformToString();

/** A PUT whose body is sent in two halves; the second half waits for `release`. */
function slowPut(key: string, body: Buffer, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}, c = client) {
  const stream = new PassThrough();
  const ac = new AbortController();
  stream.write(body.subarray(0, body.length / 2));
  const sent = c.send(new PutObjectCommand({ Bucket: B, Key: key, Body: stream, ContentLength: body.length, ...extra }), { abortSignal: ac.signal });
  return { sent, finish: () => stream.end(body.subarray(body.length / 2)), fail: () => ac.abort() };
}

/** A client that does not retry, so the caller sees the injected fault itself. */
const noRetry = () => new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('conditional writes', () => {
  test('If-None-Match: * creates once, then 412 PreconditionFailed; the first object stays', async () => {
    await put('inm/a', 'first', { IfNoneMatch: '*' });
    expect(await failure(put('inm/a', 'second', { IfNoneMatch: '*' }))).toMatchObject({ name: 'PreconditionFailed', status: 412 });
    expect(await text('inm/a')).toBe('first');
  });

  test('If-Match replaces only the version named; a stale ETag gets 412, a missing key 404 NoSuchKey', async () => {
    const v1 = await put('im/a', 'v1');
    const v2 = await put('im/a', 'v2', { IfMatch: v1.ETag });
    expect(v2.ETag).not.toBe(v1.ETag);
    expect(await failure(put('im/a', 'v3', { IfMatch: v1.ETag }))).toMatchObject({ name: 'PreconditionFailed', status: 412 });
    expect(await text('im/a')).toBe('v2');
    expect(await failure(put('im/missing', 'x', { IfMatch: v1.ETag }))).toMatchObject({ name: 'NoSuchKey', status: 404 });
    await expect(client.send(new HeadObjectCommand({ Bucket: B, Key: 'im/missing' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  test('of 40 concurrent If-None-Match writers of one key exactly one wins, and the object is its body', async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => `writer-${i}-`.repeat(2000));
    const results = await Promise.allSettled(bodies.map((b) => put('race/one', b, { IfNoneMatch: '*' })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(['PreconditionFailed', 'ConditionalRequestConflict']).toContain((r.reason as Error).name);
    expect(await text('race/one')).toBe(bodies[won[0]]);
  });

  test('a conditional write that another write overtook gets 409 ConditionalRequestConflict and changes nothing', async () => {
    const slow = slowPut('conflict/a', Buffer.alloc(64 * 1024, 'a'), { IfNoneMatch: '*' });
    await waitFor(() => s3.requests().some((r) => r.key === 'conflict/a' && r.operation === 'PutObject'), 'the slow PUT to arrive');
    await put('conflict/a', 'overtaker');
    slow.finish();
    expect(await failure(slow.sent)).toMatchObject({ name: 'ConditionalRequestConflict', status: 409 });
    expect(await text('conflict/a')).toBe('overtaker');
  });

  test('an interrupted PUT leaves nothing: no new key, and an existing object keeps its bytes and ETag', async () => {
    const before = await put('partial/old', 'old content');
    const c = s3.clientFor('interrupted');
    for (const key of ['partial/new', 'partial/old']) {
      const slow = slowPut(key, Buffer.alloc(256 * 1024, 'n'), {}, c);
      await waitFor(() => s3.requests().some((r) => r.key === key && r.operation === 'PutObject' && r.principal === 'interrupted'), 'the PUT to arrive');
      slow.fail();
      await expect(slow.sent).rejects.toThrow();
      await waitFor(() => s3.requests().some((r) => r.key === key && r.principal === 'interrupted' && r.status !== undefined), 'the server to see the abort');
    }
    c.destroy();
    expect(await s3.keys(B, 'partial/')).toEqual(['partial/old']);
    expect(await text('partial/old')).toBe('old content');
    expect((await client.send(new HeadObjectCommand({ Bucket: B, Key: 'partial/old' }))).ETag).toBe(before.ETag);
  });

  test('a reader keeps the version it opened while the key is overwritten and deleted', async () => {
    const old = Buffer.alloc(4 * MiB, 'o');
    await put('reader/a', old);
    const got = await client.send(new GetObjectCommand({ Bucket: B, Key: 'reader/a' }));
    await put('reader/a', Buffer.alloc(4 * MiB, 'N'));
    await client.send(new DeleteObjectCommand({ Bucket: B, Key: 'reader/a' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(old)).toBe(true);
  });

  test('of 8 multipart uploads of one key completed at once with If-None-Match exactly one wins; the others get 409 and stay in progress', async () => {
    const key = 'mpu/race';
    const uploads = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }));
        const part = await client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: `upload ${i}` }));
        return { UploadId: UploadId!, ETag: part.ETag!, body: `upload ${i}` };
      }),
    );
    const results = await Promise.allSettled(
      uploads.map((u) =>
        client.send(
          new CompleteMultipartUploadCommand({
            Bucket: B,
            Key: key,
            UploadId: u.UploadId,
            IfNoneMatch: '*',
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: u.ETag }] },
          }),
        ),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).name).toBe('ConditionalRequestConflict');
    expect(await text(key)).toBe(uploads[won[0]].body);
    const left = s3.uploads(B).filter((u) => u.key === key);
    expect(left).toHaveLength(7);
    for (const u of left) await client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: key, UploadId: u.uploadId }));
  });

  test('CompleteMultipartUpload honours If-None-Match: 412 leaves the upload in progress until it is aborted', async () => {
    await put('mpu/exists', 'already here');
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/exists' }));
    const part = await client.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/exists', UploadId, PartNumber: 1, Body: 'tail' }));
    const complete = client.send(
      new CompleteMultipartUploadCommand({
        Bucket: B,
        Key: 'mpu/exists',
        UploadId,
        IfNoneMatch: '*',
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    expect(await failure(complete)).toMatchObject({ name: 'PreconditionFailed', status: 412 });
    expect(await text('mpu/exists')).toBe('already here');
    expect(s3.uploads(B).map((u) => u.uploadId)).toContain(UploadId);
    await client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/exists', UploadId }));
    expect(s3.uploads(B).map((u) => u.uploadId)).not.toContain(UploadId);
  });
});

describe('multipart uploads', () => {
  test('parts are assembled in order with a multipart ETag; parts under 5 MiB (but the last) and wrong ETags are refused', async () => {
    const key = 'mpu/big';
    const p1 = Buffer.alloc(5 * MiB, 1);
    const p2 = Buffer.from('the end');
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ContentType: 'text/plain' }));
    const e1 = (await client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: p1 }))).ETag!;
    const e2 = (await client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, Body: p2 }))).ETag!;
    const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
      client.send(new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts } }));
    expect(
      await failure(
        complete([
          { PartNumber: 2, ETag: e2 },
          { PartNumber: 1, ETag: e1 },
        ]),
      ),
    ).toMatchObject({ name: 'InvalidPartOrder', status: 400 });
    expect(
      await failure(
        complete([
          { PartNumber: 1, ETag: e2 },
          { PartNumber: 2, ETag: e2 },
        ]),
      ),
    ).toMatchObject({ name: 'InvalidPart', status: 400 });
    expect(
      await failure(
        complete([
          { PartNumber: 2, ETag: e2 },
          { PartNumber: 3, ETag: e2 },
        ]),
      ),
    ).toMatchObject({ name: 'InvalidPart', status: 400 });
    const done = await complete([
      { PartNumber: 1, ETag: e1 },
      { PartNumber: 2, ETag: e2 },
    ]);
    expect(done.ETag).toMatch(/^"[0-9a-f]{32}-2"$/);
    const got = await client.send(new GetObjectCommand({ Bucket: B, Key: key }));
    expect(got.ContentType).toBe('text/plain');
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat([p1, p2]))).toBe(true);
    const tail = await client.send(new GetObjectCommand({ Bucket: B, Key: key, Range: `bytes=${5 * MiB - 2}-${5 * MiB + 2}` }));
    expect(tail.ContentRange).toBe(`bytes ${5 * MiB - 2}-${5 * MiB + 2}/${5 * MiB + 7}`);
    expect(Buffer.from(await tail.Body!.transformToByteArray())).toEqual(Buffer.from([1, 1, ...Buffer.from('the')]));
    const second = await client.send(new GetObjectCommand({ Bucket: B, Key: key, PartNumber: 2 }));
    expect(second.PartsCount).toBe(2);
    expect(await second.Body!.transformToString()).toBe('the end');
    expect(await failure(client.send(new GetObjectCommand({ Bucket: B, Key: key, PartNumber: 3 })))).toMatchObject({ status: 416 });

    const small = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/small' }));
    const s1 = await client.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/small', UploadId: small.UploadId, PartNumber: 1, Body: 'tiny' }));
    const s2 = await client.send(new UploadPartCommand({ Bucket: B, Key: 'mpu/small', UploadId: small.UploadId, PartNumber: 2, Body: 'tiny' }));
    const tooSmall = client.send(
      new CompleteMultipartUploadCommand({
        Bucket: B,
        Key: 'mpu/small',
        UploadId: small.UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: s1.ETag },
            { PartNumber: 2, ETag: s2.ETag },
          ],
        },
      }),
    );
    expect(await failure(tooSmall)).toMatchObject({ name: 'EntityTooSmall', status: 400 });
    await client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/small', UploadId: small.UploadId }));
  });

  test('AbortMultipartUpload really aborts: later UploadPart, Complete and Abort get 404 NoSuchUpload, nothing is listed', async () => {
    const key = 'mpu/aborted';
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }));
    const part = await client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 1, Body: 'x' }));
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'mpu/aborted' }));
    expect(listed.Uploads?.map((u) => u.UploadId)).toEqual([UploadId]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: key, UploadId }));
    expect(await failure(client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId, PartNumber: 2, Body: 'y' })))).toMatchObject({
      name: 'NoSuchUpload',
      status: 404,
    });
    const complete = client.send(
      new CompleteMultipartUploadCommand({ Bucket: B, Key: key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
    );
    expect(await failure(complete)).toMatchObject({ name: 'NoSuchUpload', status: 404 });
    expect(await failure(client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: key, UploadId })))).toMatchObject({ name: 'NoSuchUpload', status: 404 });
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'mpu/aborted' }))).Uploads ?? []).toEqual([]);
    expect(s3.uploads(B).filter((u) => u.key === key)).toEqual([]);
    expect(await s3.keys(B, key)).toEqual([]);
    // An upload id belongs to its key.
    const other = await client.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mpu/other' }));
    expect(await failure(client.send(new UploadPartCommand({ Bucket: B, Key: key, UploadId: other.UploadId, PartNumber: 1, Body: 'z' })))).toMatchObject({
      name: 'NoSuchUpload',
    });
    await client.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'mpu/other', UploadId: other.UploadId }));
  });
});

describe('checksums and aws-chunked bodies (the SDK default, as the images run on AWS)', () => {
  /** A client with the SDK's default checksum behaviour (WHEN_SUPPORTED), spelled out whatever client() does. */
  const defaults = () =>
    new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      responseChecksumValidation: 'WHEN_SUPPORTED',
    });

  test('a stream body goes aws-chunked with a CRC32 trailer: decoded, verified, stored, and returned for validation', async () => {
    const c = defaults();
    try {
      const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
      const stream = new PassThrough();
      stream.end(body);
      s3.clearRequests();
      const res = await c.send(new PutObjectCommand({ Bucket: B, Key: 'ck/stream', Body: stream, ContentLength: body.length }));
      expect(res.ChecksumCRC32).toBeDefined();
      const got = await c.send(new GetObjectCommand({ Bucket: B, Key: 'ck/stream', ChecksumMode: 'ENABLED' }));
      expect(got.ChecksumCRC32).toBe(res.ChecksumCRC32);
      expect(got.ContentEncoding).toBeUndefined();
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    } finally {
      c.destroy();
    }
  });

  test('a checksum that does not match the body is 400 BadDigest and nothing is stored', async () => {
    const c = defaults();
    try {
      const wrong = c.send(new PutObjectCommand({ Bucket: B, Key: 'ck/bad', Body: 'payload', ChecksumSHA256: Buffer.alloc(32).toString('base64') }));
      expect(await failure(wrong)).toMatchObject({ name: 'BadDigest', status: 400 });
      const wrongCrc = c.send(new PutObjectCommand({ Bucket: B, Key: 'ck/bad', Body: 'payload', ChecksumCRC32C: 'AAAAAA==' }));
      expect(await failure(wrongCrc)).toMatchObject({ name: 'BadDigest', status: 400 });
      const wrongMd5 = client.send(new PutObjectCommand({ Bucket: B, Key: 'ck/bad', Body: 'payload', ContentMD5: Buffer.alloc(16).toString('base64') }));
      expect(await failure(wrongMd5)).toMatchObject({ name: 'BadDigest', status: 400 });
      expect(await s3.keys(B, 'ck/bad')).toEqual([]);
      // The same algorithms with the right values pass (CRC32C is computed by the stand-in itself).
      await c.send(new PutObjectCommand({ Bucket: B, Key: 'ck/good', Body: 'payload', ChecksumAlgorithm: 'CRC32C' }));
      await c.send(new PutObjectCommand({ Bucket: B, Key: 'ck/good', Body: 'payload', ChecksumAlgorithm: 'SHA256' }));
    } finally {
      c.destroy();
    }
  });

  test('multipart parts with CRC32 checksums upload and complete', async () => {
    const c = defaults();
    try {
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'ck/mpu', ChecksumAlgorithm: 'CRC32' }));
      const stream = new PassThrough();
      stream.end(Buffer.alloc(5 * MiB, 7));
      const p1 = await c.send(
        new UploadPartCommand({ Bucket: B, Key: 'ck/mpu', UploadId, PartNumber: 1, Body: stream, ContentLength: 5 * MiB, ChecksumAlgorithm: 'CRC32' }),
      );
      const p2 = await c.send(new UploadPartCommand({ Bucket: B, Key: 'ck/mpu', UploadId, PartNumber: 2, Body: 'end', ChecksumAlgorithm: 'CRC32' }));
      expect(p1.ChecksumCRC32).toBeDefined();
      await c.send(
        new CompleteMultipartUploadCommand({
          Bucket: B,
          Key: 'ck/mpu',
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag, ChecksumCRC32: p1.ChecksumCRC32 },
              { PartNumber: 2, ETag: p2.ETag, ChecksumCRC32: p2.ChecksumCRC32 },
            ],
          },
        }),
      );
      expect((await c.send(new HeadObjectCommand({ Bucket: B, Key: 'ck/mpu' }))).ContentLength).toBe(5 * MiB + 3);
    } finally {
      c.destroy();
    }
  });
});

describe('service limits', () => {
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html and .../UsingMetadata.html
  test('keys over 1,024 UTF-8 bytes and user metadata over 2 KB are refused; an unknown bucket is NoSuchBucket', async () => {
    expect(await failure(put('k'.repeat(1025), 'x'))).toMatchObject({ name: 'KeyTooLongError', status: 400 });
    await put('\u00e9'.repeat(512), 'x'); // 1,024 bytes: the limit itself is fine
    expect(await failure(put('meta/big', 'x', { Metadata: { path: 'p'.repeat(2045) } }))).toMatchObject({ name: 'MetadataTooLarge', status: 400 });
    await put('meta/ok', 'x', { Metadata: { path: 'p'.repeat(2044) } });
    expect((await client.send(new HeadObjectCommand({ Bucket: B, Key: 'meta/ok' }))).Metadata).toEqual({ path: 'p'.repeat(2044) });
    expect(await failure(client.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
  });
});

describe('listing', () => {
  test('ListObjectsV2 pages in UTF-8 byte order with prefix, delimiter and start-after', async () => {
    const keys = ['ls/a/1', 'ls/a/2', 'ls/b', 'ls/c/3', 'ls/\u{1F600}', 'ls/\uFFFD', 'ls/z'];
    for (const k of keys) await put(k, k);
    const all: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'ls/', MaxKeys: 2, ContinuationToken: token }));
      expect(page.KeyCount).toBeLessThanOrEqual(2);
      all.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    // U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    expect(all).toEqual(['ls/a/1', 'ls/a/2', 'ls/b', 'ls/c/3', 'ls/z', 'ls/\uFFFD', 'ls/\u{1F600}']);
    const folders: string[] = [];
    const files: string[] = [];
    token = undefined;
    do {
      const page: ListObjectsV2CommandOutput = await client.send(
        new ListObjectsV2Command({ Bucket: B, Prefix: 'ls/', Delimiter: '/', MaxKeys: 1, ContinuationToken: token }),
      );
      folders.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
      files.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    expect(folders).toEqual(['ls/a/', 'ls/c/']);
    expect(files).toEqual(['ls/b', 'ls/z', 'ls/\uFFFD', 'ls/\u{1F600}']);
    const after = await client.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'ls/', StartAfter: 'ls/b' }));
    expect(after.Contents!.map((o) => o.Key)).toEqual(['ls/c/3', 'ls/z', 'ls/\uFFFD', 'ls/\u{1F600}']);
  });
});

describe('authorization', () => {
  /** Grants each principal a set of "action resource" strings (resource ending in * is a prefix). */
  function grants(table: Record<string, string[]>, seen: AuthorizeRequest[] = []) {
    return (r: AuthorizeRequest) => {
      seen.push(r);
      return (table[r.principal] ?? []).some((g) => {
        const [action, resource] = g.split(' ');
        return (action === '*' || action === r.action) && (resource.endsWith('*') ? r.resource.startsWith(resource.slice(0, -1)) : r.resource === resource);
      });
    };
  }

  test('every call is authorized as its IAM action on its resource; a denial is 403 AccessDenied with AWS XML', async () => {
    const seen: AuthorizeRequest[] = [];
    s3.authorize(
      grants(
        {
          S3RVER: ['* *'],
          writer: [`s3:PutObject arn:aws:s3:::${B}/auth/*`],
          reader: [`s3:GetObject arn:aws:s3:::${B}/auth/*`, `s3:ListBucket arn:aws:s3:::${B}`],
        },
        seen,
      ),
    );
    const writer = s3.clientFor('writer');
    const reader = s3.clientFor('reader');
    try {
      await put('auth/a', 'x', {}, writer);
      expect(await failure(put('other/a', 'x', {}, writer))).toMatchObject({ name: 'AccessDenied', status: 403, message: 'Access Denied' });
      expect(await failure(put('auth/b', 'x', {}, reader))).toMatchObject({ name: 'AccessDenied', status: 403 });
      expect(await text('auth/a', reader)).toBe('x');
      expect(await failure(text('auth/a', writer))).toMatchObject({ name: 'AccessDenied', status: 403 });
      await reader.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'auth/', Delimiter: '/' }));
      expect(seen.find((r) => r.principal === 'reader' && r.action === 's3:ListBucket')).toMatchObject({
        resource: `arn:aws:s3:::${B}`,
        context: expect.objectContaining({ 's3:prefix': 'auth/', 's3:delimiter': '/' }),
      });
      expect(seen.find((r) => r.principal === 'writer' && r.resource === `arn:aws:s3:::${B}/auth/a`)).toMatchObject({
        action: 's3:PutObject',
        operation: 'PutObject',
      });
      expect(
        s3
          .requests()
          .filter((r) => r.principal === 'writer' && r.status === 403)
          .map((r) => r.code),
      ).toEqual(['AccessDenied', 'AccessDenied']);
      expect(await s3.keys(B, 'other/')).toEqual([]);
    } finally {
      writer.destroy();
      reader.destroy();
    }
  });

  test('a write with If-Match also needs s3:GetObject (If-None-Match does not)', async () => {
    const v = await put('auth/im', 'v1');
    s3.authorize(grants({ putonly: [`s3:PutObject arn:aws:s3:::${B}/auth/*`] }));
    const c = s3.clientFor('putonly');
    try {
      expect(await failure(put('auth/im', 'v2', { IfMatch: v.ETag }, c))).toMatchObject({ name: 'AccessDenied', status: 403 });
      await put('auth/inm', 'new', { IfNoneMatch: '*' }, c);
    } finally {
      c.destroy();
    }
  });

  test('GET/HEAD of a missing key is 404 with s3:ListBucket, 403 without it', async () => {
    s3.authorize(
      grants({
        lister: [`s3:GetObject arn:aws:s3:::${B}/*`, `s3:ListBucket arn:aws:s3:::${B}`],
        blind: [`s3:GetObject arn:aws:s3:::${B}/*`],
      }),
    );
    const lister = s3.clientFor('lister');
    const blind = s3.clientFor('blind');
    try {
      expect(await failure(text('nope', lister))).toMatchObject({ name: 'NoSuchKey', status: 404 });
      expect(await failure(text('nope', blind))).toMatchObject({ name: 'AccessDenied', status: 403 });
      expect((await failure(blind.send(new HeadObjectCommand({ Bucket: B, Key: 'nope' })))).status).toBe(403);
      expect((await failure(lister.send(new HeadObjectCommand({ Bucket: B, Key: 'nope' })))).status).toBe(404);
    } finally {
      lister.destroy();
      blind.destroy();
    }
  });

  test('an unknown access key or a wrong secret is refused before any authorizer runs', async () => {
    const client = (accessKeyId: string, secretAccessKey: string) =>
      new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    s3.clientFor('known').destroy();
    const stranger = client('stranger', 'x');
    const forger = client('known', 'not-the-secret');
    try {
      expect(await failure(put('auth/x', 'x', {}, stranger))).toMatchObject({ name: 'InvalidAccessKeyId', status: 403 });
      expect(await failure(put('auth/x', 'x', {}, forger))).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      stranger.destroy();
      forger.destroy();
    }
  });

  test('with the IAM simulator as authorizer, a policy that enforces conditional writes refuses an unconditional PUT', async () => {
    // The bucket policy AWS gives for enforcing If-None-Match on uploads:
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
    const enforce = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:PutObject',
          Resource: `arn:aws:s3:::${B}/enforced/*`,
          // The multipart steps that cannot carry the header are exempt.
          Condition: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } },
        },
      ],
    };
    const identity = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: [`arn:aws:s3:::${B}`, `arn:aws:s3:::${B}/*`] }] };
    s3.authorize(async (r) => {
      const result = await runSimulation(
        {
          request: {
            principal: `arn:aws:iam::123456789012:role/${r.principal}`,
            action: r.action,
            resource: { resource: r.resource, accountId: '123456789012' },
            contextVariables: r.context,
          },
          identityPolicies: [{ name: 'app', policy: identity }],
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          resourcePolicy: enforce,
        },
        {},
      );
      if (result.resultType === 'error') throw new Error(JSON.stringify(result.errors));
      return result.overallResult === 'Allowed';
    });
    const c = s3.clientFor('app');
    try {
      expect(await failure(put('enforced/a', 'x', {}, c))).toMatchObject({ name: 'AccessDenied', status: 403 });
      await put('enforced/a', 'x', { IfNoneMatch: '*' }, c);
      expect(await text('enforced/a', c)).toBe('x');
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'enforced/m' }));
      const part = await c.send(new UploadPartCommand({ Bucket: B, Key: 'enforced/m', UploadId, PartNumber: 1, Body: 'm' }));
      const complete = (extra: { IfNoneMatch?: string }) =>
        c.send(
          new CompleteMultipartUploadCommand({
            Bucket: B,
            Key: 'enforced/m',
            UploadId,
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
            ...extra,
          }),
        );
      expect(await failure(complete({}))).toMatchObject({ name: 'AccessDenied', status: 403 });
      await complete({ IfNoneMatch: '*' });
      expect(await text('enforced/m', c)).toBe('m');
    } finally {
      c.destroy();
    }
  });

  test('the request -> IAM action mapping is exported for the policy simulator', () => {
    const map = (method: string, url: string, headers: Record<string, string> = {}) => authRequests(classify(method, url, headers));
    expect(map('GET', '/b/k%20x?x-id=GetObject')).toEqual([expect.objectContaining({ action: 's3:GetObject', resource: 'arn:aws:s3:::b/k x' })]);
    expect(map('HEAD', '/b/k')[0].action).toBe('s3:GetObject');
    expect(map('PUT', '/b/k?x-id=PutObject')[0].action).toBe('s3:PutObject');
    expect(map('POST', '/b/k?uploads')[0].action).toBe('s3:PutObject');
    expect(map('PUT', '/b/k?partNumber=1&uploadId=u')[0].action).toBe('s3:PutObject');
    expect(map('POST', '/b/k?uploadId=u')[0].action).toBe('s3:PutObject');
    expect(map('DELETE', '/b/k?uploadId=u')[0].action).toBe('s3:AbortMultipartUpload');
    expect(map('DELETE', '/b/k')[0].action).toBe('s3:DeleteObject');
    expect(map('GET', '/b?list-type=2&prefix=in%2F')).toEqual([
      expect.objectContaining({ action: 's3:ListBucket', resource: 'arn:aws:s3:::b', context: expect.objectContaining({ 's3:prefix': 'in/' }) }),
    ]);
    expect(map('GET', '/b?uploads')[0].action).toBe('s3:ListBucketMultipartUploads');
    expect(map('PUT', '/b/k', { 'if-match': '"e"' }).map((r) => r.action)).toEqual(['s3:PutObject', 's3:GetObject']);
    expect(map('PUT', '/b/k', { 'if-none-match': '*' })[0].context).toMatchObject({ 's3:if-none-match': '*', 's3:ObjectCreationOperation': 'true' });
    expect(map('PUT', '/b/k?partNumber=1&uploadId=u')[0].context['s3:ObjectCreationOperation']).toBe('false');
  });
});

describe('fault injection and the request log', () => {
  test('503 SlowDown on only the 2nd matching PUT: the SDK retries it, and the log counts the calls', async () => {
    s3.clearRequests();
    const fault = s3.fault({ operation: 'PutObject', key: /^faults\/slow/, nth: 2, action: { kind: 'error', status: 503 } });
    await put('faults/slow1', 'a');
    await put('faults/slow2', 'b');
    await put('faults/slow3', 'c');
    expect(fault.fired).toBe(1);
    const puts = s3.requests().filter((r) => r.operation === 'PutObject');
    expect(puts.map((r) => [r.key, r.status])).toEqual([
      ['faults/slow1', 200],
      ['faults/slow2', 503],
      ['faults/slow2', 200],
      ['faults/slow3', 200],
    ]);
    expect(puts[1]).toMatchObject({ code: 'SlowDown', fault: 'error before' });
  });

  test('500 after the write took effect: the caller sees InternalError, yet the object is there', async () => {
    const once = noRetry();
    s3.fault({ operation: 'PutObject', key: 'faults/after', when: 'after', times: 1, action: { kind: 'error' } });
    expect(await failure(put('faults/after', 'landed', {}, once))).toMatchObject({ name: 'InternalError', status: 500 });
    expect(await text('faults/after')).toBe('landed');
    once.destroy();
  });

  test('a stall holds a request until released (or for N ms); a reset drops the connection; a GET can be cut mid-body', async () => {
    await put('faults/get', Buffer.alloc(MiB, 'g'));
    s3.fault({ operation: 'HeadObject', key: 'faults/get', times: 1, action: { kind: 'stall', ms: 400 } });
    const t0 = Date.now();
    await client.send(new HeadObjectCommand({ Bucket: B, Key: 'faults/get' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    const stall = s3.fault({ operation: 'GetObject', key: 'faults/get', action: { kind: 'stall' } });
    let done = false;
    const pending = text('faults/get').then((t) => ((done = true), t));
    await waitFor(() => stall.matched === 1, 'the stalled GET');
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    stall.remove();
    expect((await pending).length).toBe(MiB);

    const once = noRetry();
    try {
      s3.fault({ operation: 'PutObject', key: 'faults/reset', times: 1, action: { kind: 'reset' } });
      const reset = await failure(put('faults/reset', 'x', {}, once));
      expect(reset.message).toMatch(/ECONNRESET|socket hang up|aborted|EPIPE/i);
      expect(await s3.keys(B, 'faults/reset')).toEqual([]);

      // A drop mid-upload: the connection goes after 100 KiB of the body, and nothing is stored.
      s3.fault({ operation: 'PutObject', key: 'faults/midway', times: 1, action: { kind: 'reset', afterBytes: 100 * 1024 } });
      await expect(put('faults/midway', Buffer.alloc(MiB, 'm'), {}, once)).rejects.toThrow();
      expect(
        s3
          .requests()
          .filter((r) => r.key === 'faults/midway')
          .map((r) => [r.fault, r.status]),
      ).toEqual([['reset before', 0]]);
      expect(await s3.keys(B, 'faults/midway')).toEqual([]);

      s3.fault({ operation: 'GetObject', key: 'faults/get', when: 'after', times: 1, action: { kind: 'reset', afterBytes: 1000 } });
      const cut = once.send(new GetObjectCommand({ Bucket: B, Key: 'faults/get' })).then((r) => r.Body!.transformToByteArray());
      await expect(cut).rejects.toThrow();
    } finally {
      once.destroy();
    }
  });

  test('a hard stop resets uploads in progress (nothing lands); restart keeps the objects', async () => {
    await put('restart/kept', 'kept');
    const c = s3.clientFor('stopped');
    const slow = slowPut('restart/lost', Buffer.alloc(128 * 1024, 'l'), {}, c);
    await waitFor(() => s3.requests().some((r) => r.key === 'restart/lost'), 'the PUT to arrive');
    await s3.stop(true);
    await expect(slow.sent).rejects.toThrow();
    c.destroy();
    await s3.restart();
    expect(await text('restart/kept')).toBe('kept');
    expect(await s3.keys(B, 'restart/')).toEqual(['restart/kept']);
  });
});
