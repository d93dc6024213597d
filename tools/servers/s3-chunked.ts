/**
 * Request-body checks of the S3 stand-in: the aws-chunked content encoding the SDK uses for stream
 * bodies with a checksum trailer (its default, requestChecksumCalculation WHEN_SUPPORTED), and the
 * flexible checksums (x-amz-checksum-* header or trailer) S3 verifies before storing anything.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
 */
import { createHash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { S3RequestError } from './s3-actions';

export type ChecksumName = 'crc32' | 'crc32c' | 'sha1' | 'sha256';
export const CHECKSUM_NAMES: readonly ChecksumName[] = ['crc32', 'crc32c', 'sha1', 'sha256'];

/** CRC-32C (Castagnoli), which Node does not ship; table-driven, reflected polynomial 0x82F63B78. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Incremental checksum with S3's encoding of the result (base64 of the big-endian digest). */
export class Checksum {
  private crc = 0;
  private readonly hash;
  constructor(readonly name: ChecksumName) {
    this.hash = name === 'sha1' || name === 'sha256' ? createHash(name) : undefined;
    if (name === 'crc32c') this.crc = 0xffffffff;
  }
  update(chunk: Buffer): void {
    if (this.hash) this.hash.update(chunk);
    else if (this.name === 'crc32') this.crc = zlib.crc32(chunk, this.crc);
    else {
      let c = this.crc;
      for (let i = 0; i < chunk.length; i++) c = CRC32C_TABLE[(c ^ chunk[i]) & 0xff] ^ (c >>> 8);
      this.crc = c >>> 0;
    }
  }
  digest(): string {
    if (this.hash) return this.hash.digest('base64');
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.name === 'crc32c' ? this.crc ^ 0xffffffff : this.crc) >>> 0);
    return out.toString('base64');
  }
}

/** The checksum algorithm a request declares (header value, or the trailer it announces). */
export function declaredChecksum(headers: Record<string, string | string[] | undefined>): { name: ChecksumName; value?: string } | undefined {
  const trailer = String(headers['x-amz-trailer'] ?? '')
    .trim()
    .toLowerCase();
  const fromTrailer = /^x-amz-checksum-([a-z0-9]+)$/.exec(trailer)?.[1];
  const fromHeader = Object.keys(headers)
    .map((h) => /^x-amz-checksum-([a-z0-9]+)$/.exec(h)?.[1])
    .find((n) => n !== undefined && n !== 'algorithm' && n !== 'type' && n !== 'mode');
  const name = fromTrailer ?? fromHeader;
  if (name === undefined) return undefined;
  if (!(CHECKSUM_NAMES as string[]).includes(name))
    throw new S3RequestError(501, 'NotImplemented', `The S3 stand-in cannot verify x-amz-checksum-${name} (only ${CHECKSUM_NAMES.join(', ')}).`);
  return { name: name as ChecksumName, value: fromTrailer ? undefined : String(headers[`x-amz-checksum-${name}`]) };
}

/**
 * Decodes `aws-chunked`: `<hex size>[;chunk-signature=...]\r\n<bytes>\r\n` ... `0\r\n`, then trailer
 * lines and an empty line. Chunk signatures are parsed, not verified. Anything malformed is an error
 * (400 IncompleteBody), and so is a body that ends early. `trailers` holds the trailer headers.
 */
export class AwsChunkedDecoder extends Transform {
  readonly trailers: Record<string, string> = {};
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private state: 'header' | 'data' | 'crlf' | 'trailer' | 'done' = 'header';

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      this.drain();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    cb(this.state === 'done' && this.pending.length === 0 ? undefined : malformed('the aws-chunked body ended before its final chunk'));
  }

  private drain(): void {
    for (;;) {
      if (this.state === 'data') {
        if (this.pending.length === 0) return;
        const n = Math.min(this.remaining, this.pending.length);
        this.push(this.pending.subarray(0, n));
        this.pending = this.pending.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'crlf';
        continue;
      }
      if (this.state === 'crlf') {
        if (this.pending.length < 2) return;
        if (this.pending[0] !== 13 || this.pending[1] !== 10) throw malformed('a chunk is not followed by CRLF');
        this.pending = this.pending.subarray(2);
        this.state = 'header';
        continue;
      }
      if (this.state === 'done') {
        if (this.pending.length) throw malformed('bytes after the final chunk');
        return;
      }
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) {
        if (this.pending.length > 4096) throw malformed('a chunk header or trailer line is too long');
        return;
      }
      const line = this.pending.subarray(0, eol).toString('latin1');
      this.pending = this.pending.subarray(eol + 2);
      if (this.state === 'header') {
        const m = /^([0-9a-fA-F]+)(;chunk-signature=[0-9a-f]{64})?$/.exec(line);
        if (!m) throw malformed(`bad chunk header ${JSON.stringify(line.slice(0, 80))}`);
        this.remaining = parseInt(m[1], 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.state = 'done';
      } else {
        const colon = line.indexOf(':');
        if (colon <= 0) throw malformed(`bad trailer line ${JSON.stringify(line.slice(0, 80))}`);
        this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    }
  }
}

function malformed(what: string): S3RequestError {
  return new S3RequestError(400, 'IncompleteBody', `Malformed aws-chunked body: ${what}.`);
}
