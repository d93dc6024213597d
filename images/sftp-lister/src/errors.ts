/** Which failures are worth a retry, how long to wait, and how to name a failure's cause. */
import type { Config } from './config';
import { FatalError } from './sftp';
import { isPreconditionFailed } from './state';

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** S3 answered 501 to a request with If-None-Match / If-Match: it does not implement conditional writes. */
export function conditionalUnsupported(e: unknown): boolean {
  return httpStatus(e) === 501 || (e as Error)?.name === 'NotImplemented';
}

export function retriable(e: unknown): boolean {
  if (e instanceof FatalError || isPreconditionFailed(e) || conditionalUnsupported(e)) return false;
  const msg = (e as Error)?.message ?? '';
  if (/changed while reading|listed with|Permission denied|No such file/i.test(msg)) return false;
  const status = httpStatus(e);
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return false;
  return true;
}

/**
 * The message of an S3 failure with its cause: the SDK reports some failures as a bare "UnknownError"
 * or an AbortError; the cause (connection refused, status code) is what an operator needs.
 */
export function describe(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const err = cur as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    const text = [
      err.name && err.name !== 'Error' ? err.name : '',
      err.message,
      err.code && !String(err.message).includes(err.code) ? `(${err.code})` : '',
      status ? `[HTTP ${status}]` : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (text && !parts.includes(text)) parts.push(text);
  }
  return parts.join(': caused by ') || String(e);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function backoff(cfg: Config, attempt: number): number {
  const base = Math.min(30000, cfg.retryBaseMs * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}
