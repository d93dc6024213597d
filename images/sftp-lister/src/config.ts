/**
 * Configuration from the environment. Every variable is documented in ../README.md; this module
 * validates them all up front so a bad setting fails before any connection is made.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Completion = 'leave' | 'move' | 'delete';

export interface Config {
  /** SFTP server host name. */
  readonly host: string;
  /** @default 22 */
  readonly port: number;
  readonly user: string;
  /** Private key text (OpenSSH or PEM). Never logged. */
  readonly privateKey: string;
  readonly passphrase?: string;
  /** Accepted host-key fingerprints, `SHA256:<unpadded base64>`. At least one. */
  readonly hostKeyFingerprints: readonly string[];
  /** Remote folder to list. @default '.' (the session's start folder) */
  readonly remoteDir: string;
  /** Descend into sub-folders. @default false */
  readonly recursive: boolean;
  /** Globs a path (relative to remoteDir) must match. @default ['**'] */
  readonly include: readonly string[];
  /** Globs that exclude a path. @default [] */
  readonly exclude: readonly string[];
  /** Files modified more recently than this are left for a later run. @default 60 */
  readonly minAgeSeconds: number;
  /** At most this many files are ingested per run (oldest first). @default 10000 */
  readonly maxFiles: number;
  /** A run whose listing finds more files than this warns in its summary (listing and index cost grow with them). @default 50000 */
  readonly listingWarnFiles: number;
  /** Batch manifests (contract C3): at most this many files per batch. @default 200 */
  readonly batchMaxFiles: number;
  /** Batch manifests: at most this many source bytes per batch (a larger file is a batch of its own). @default 268435456 */
  readonly batchMaxBytes: number;
  readonly destBucket: string;
  /** Key prefix objects land under; a trailing '/' is added when missing. @default '' */
  readonly destPrefix: string;
  /** @default 'leave' */
  readonly completion: Completion;
  /** Remote folder files are moved to with completion=move. */
  readonly completionMoveDir?: string;
  /** Files larger than SMALL_FILE_BYTES transferred in parallel. @default 4 */
  readonly concurrency: number;
  /** Small files (at most SMALL_FILE_BYTES) in flight at once, large ones included. @default 32 */
  readonly smallFileConcurrency: number;
  /** Exact key of this run's manifest. */
  readonly manifestKey?: string;
  /** Prefix for a generated manifest name when manifestKey is not set. @default '.sftp-lister/manifests/' */
  readonly manifestPrefix: string;
  /** Key of the ingest index (a cache of what was ingested). @default derived, see README */
  readonly stateKey: string;
  /** Use S3 conditional writes (If-None-Match / If-Match). @default true */
  readonly conditionalWrites: boolean;
  /** Reads kept in flight per file. @default 16 */
  readonly readWindow: number;
  /** Bytes per SFTP read request. @default 131072 */
  readonly readChunkBytes: number;
  /** Multipart part size. @default 8 MiB */
  readonly partSizeBytes: number;
  /** Parts uploaded in parallel per file. @default 4 */
  readonly uploadQueueSize: number;
  /** Retries of a file after a dropped connection or transient error. @default 3 */
  readonly retries: number;
  /** First retry delay; doubles each attempt (with jitter), capped at 30 s. @default 1000 */
  readonly retryBaseMs: number;
  /** Connection (handshake) timeout. @default 20000 */
  readonly connectTimeoutMs: number;
  /** S3 endpoint override (S3-compatible servers). */
  readonly s3Endpoint?: string;
  /** @default false */
  readonly s3ForcePathStyle: boolean;
  /** 'debug' adds per-part progress lines. @default 'info' */
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function required(env: Env, name: string): string {
  const v = str(env, name);
  if (v === undefined) throw new ConfigError(`${name} is required`);
  return v;
}

function int(env: Env, name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new ConfigError(`${name} must be a whole number, got '${v}'`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = str(env, name)?.toLowerCase();
  if (v === undefined) return dflt;
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got '${v}'`);
}

function list(env: Env, name: string): string[] {
  return (str(env, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * ssh2 reads OpenSSH keys and the traditional PEM forms (PKCS#1 RSA, SEC1 EC) but not PKCS#8
 * (`BEGIN PRIVATE KEY` / `BEGIN ENCRYPTED PRIVATE KEY`, OpenSSL 3's default output). Node's crypto
 * reads PKCS#8 (decrypting with the passphrase) and re-exports RSA and EC keys in the forms ssh2
 * reads; ED25519 has no traditional PEM form, so it is re-wrapped as an unencrypted OpenSSH key
 * (PROTOCOL.key in OpenSSH's source). The converted key stays in memory only.
 */
function fromPkcs8(text: string, passphrase: string | undefined, variable: string): string {
  if (!/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(text)) return text;
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: text, format: 'pem', passphrase });
  } catch (e) {
    // Node's message names the problem (bad decrypt, unsupported), never the key material.
    throw new ConfigError(`${variable}: the PKCS#8 private key cannot be read: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }) as string;
  if (key.asymmetricKeyType === 'ec') return key.export({ type: 'sec1', format: 'pem' }) as string;
  if (key.asymmetricKeyType === 'ed25519') {
    const jwk = key.export({ format: 'jwk' });
    const seed = Buffer.from(jwk.d!, 'base64url');
    const pub = Buffer.from(jwk.x!, 'base64url');
    const str = (b: Buffer | string) => {
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(buf.length);
      return Buffer.concat([len, buf]);
    };
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const pubBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
    const check = crypto.randomBytes(4).readUInt32BE(0);
    let priv = Buffer.concat([u32(check), u32(check), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str('')]);
    const pad = Buffer.from(Array.from({ length: (8 - (priv.length % 8)) % 8 }, (_, i) => i + 1));
    priv = Buffer.concat([priv, pad]);
    const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(pubBlob), str(priv)]);
    const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;
  }
  throw new ConfigError(`${variable}: PKCS#8 ${key.asymmetricKeyType} keys are not supported (use RSA, ECDSA or ED25519)`);
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function loadConfig(env: Env = process.env): Config {
  const host = required(env, 'SFTP_HOST');
  const user = required(env, 'SFTP_USER');
  const keyText = env.SFTP_PRIVATE_KEY;
  const keyFile = str(env, 'SFTP_PRIVATE_KEY_FILE');
  let privateKey: string;
  if (keyText !== undefined && keyText.trim() !== '') {
    if (keyFile) throw new ConfigError('set only one of SFTP_PRIVATE_KEY and SFTP_PRIVATE_KEY_FILE');
    privateKey = keyText;
  } else if (keyFile) {
    try {
      privateKey = fs.readFileSync(keyFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`SFTP_PRIVATE_KEY_FILE ${keyFile} cannot be read: ${(e as Error).message}`);
    }
  } else {
    throw new ConfigError('SFTP_PRIVATE_KEY (key text) or SFTP_PRIVATE_KEY_FILE is required');
  }
  // Secrets pasted as one line (JSON-escaped) carry literal "\n": restore the line breaks.
  if (!privateKey.includes('\n') && privateKey.includes('\\n')) privateKey = privateKey.replace(/\\n/g, '\n');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    // Say where the problem is without echoing any of the secret.
    throw new ConfigError(
      `${keyFile ? 'SFTP_PRIVATE_KEY_FILE' : 'SFTP_PRIVATE_KEY'} does not contain a PEM/OpenSSH private key (no BEGIN ... PRIVATE KEY line)`,
    );
  }

  privateKey = fromPkcs8(privateKey, env.SFTP_PASSPHRASE || undefined, keyFile ? 'SFTP_PRIVATE_KEY_FILE' : 'SFTP_PRIVATE_KEY');

  const hostKeyFingerprints = list(env, 'SFTP_HOST_KEY_FINGERPRINTS');
  if (hostKeyFingerprints.length === 0) {
    throw new ConfigError(
      "SFTP_HOST_KEY_FINGERPRINTS is required (comma-separated 'SHA256:...' as `ssh-keygen -l -E sha256` prints): refusing to connect to an unverified host",
    );
  }
  for (const f of hostKeyFingerprints) {
    if (!FINGERPRINT.test(f)) throw new ConfigError(`SFTP_HOST_KEY_FINGERPRINTS: '${f}' is not of the form SHA256:<43 base64 chars>`);
  }

  const completion = (str(env, 'COMPLETION') ?? 'leave').toLowerCase();
  if (completion !== 'leave' && completion !== 'move' && completion !== 'delete') {
    throw new ConfigError(`COMPLETION must be leave, move or delete, got '${completion}'`);
  }
  const completionMoveDir = str(env, 'COMPLETION_MOVE_DIR');
  if (completion === 'move' && !completionMoveDir) throw new ConfigError('COMPLETION=move needs COMPLETION_MOVE_DIR');

  const destBucket = required(env, 'DEST_BUCKET');
  let destPrefix = str(env, 'DEST_PREFIX') ?? '';
  destPrefix = destPrefix.replace(/^\/+/, '');
  if (destPrefix !== '' && !destPrefix.endsWith('/')) destPrefix += '/';

  const remoteDir = str(env, 'SFTP_REMOTE_DIR') ?? '.';
  // Same spelling style: decidable now (a mixed style is resolved on the server, after connecting).
  const norm = (d: string) => path.posix.normalize(d).replace(/(.)\/+$/, '$1');
  if (completion === 'move' && norm(completionMoveDir!) === norm(remoteDir)) {
    throw new ConfigError(`COMPLETION_MOVE_DIR '${completionMoveDir}' is the listed folder SFTP_REMOTE_DIR '${remoteDir}': moved files would be listed again`);
  }
  const port = int(env, 'SFTP_PORT', 22, 1, 65535);
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error, got '${logLevel}'`);

  let manifestPrefix = str(env, 'MANIFEST_PREFIX') ?? '.sftp-lister/manifests/';
  if (!manifestPrefix.endsWith('/')) manifestPrefix += '/';
  // One index per source and landing prefix, so several listers can share a bucket.
  const source = crypto.createHash('sha256').update(`${host}:${port}:${remoteDir}:${destPrefix}`).digest('hex').slice(0, 16);

  const partSizeMiB = int(env, 'PART_SIZE_MB', 8, 5, 5120);
  return {
    host,
    port,
    user,
    privateKey,
    passphrase: env.SFTP_PASSPHRASE || undefined,
    hostKeyFingerprints,
    remoteDir,
    recursive: bool(env, 'SFTP_RECURSIVE', false),
    include: list(env, 'INCLUDE').length ? list(env, 'INCLUDE') : ['**'],
    exclude: list(env, 'EXCLUDE'),
    minAgeSeconds: int(env, 'MIN_AGE_SECONDS', 60, 0),
    maxFiles: int(env, 'MAX_FILES', 10_000, 1),
    listingWarnFiles: int(env, 'LISTING_WARN_FILES', 50_000, 1),
    batchMaxFiles: int(env, 'BATCH_MAX_FILES', 200, 1),
    batchMaxBytes: int(env, 'BATCH_MAX_BYTES', 268_435_456, 1),
    destBucket,
    destPrefix,
    completion,
    completionMoveDir,
    concurrency: int(env, 'CONCURRENCY', 4, 1, 64),
    smallFileConcurrency: int(env, 'SMALL_FILE_CONCURRENCY', 32, 1, 256),
    manifestKey: str(env, 'MANIFEST_KEY')?.replace(/^\/+/, ''),
    manifestPrefix,
    stateKey: str(env, 'STATE_KEY') ?? `.sftp-lister/state/${source}.json`,
    conditionalWrites: bool(env, 'S3_CONDITIONAL_WRITES', true),
    readWindow: int(env, 'READ_WINDOW', 16, 1, 1024),
    readChunkBytes: int(env, 'READ_CHUNK_BYTES', 131072, 1024, 255 * 1024),
    partSizeBytes: partSizeMiB * 1024 * 1024,
    uploadQueueSize: int(env, 'UPLOAD_QUEUE_SIZE', 4, 1, 64),
    retries: int(env, 'RETRIES', 3, 0, 20),
    retryBaseMs: int(env, 'RETRY_BASE_MS', 1000, 0, 60000),
    connectTimeoutMs: int(env, 'CONNECT_TIMEOUT_MS', 20000, 1000),
    s3Endpoint: str(env, 'AWS_ENDPOINT_URL_S3') ?? str(env, 'AWS_ENDPOINT_URL'),
    s3ForcePathStyle: bool(env, 'AWS_S3_FORCE_PATH_STYLE', false),
    logLevel: logLevel as Config['logLevel'],
  };
}
