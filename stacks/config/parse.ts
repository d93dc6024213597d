// Parsers for the settings table: each turns a raw value (an environment string, or any JSON value from
// cdktf context) into a typed one, or fails with the reason (the loader adds which setting it is).

/** A value as given: environment variables are strings; context values are any JSON. */
export type Raw = string | number | boolean | readonly unknown[];

/** Throws the setting's ConfigError with `reason`. */
export type Fail = (reason: string) => never;

export type Parser<T> = (raw: Raw, fail: Fail) => T;

/** One value, as trimmed text; `check` returns why it is invalid. */
export function text(check?: (s: string) => string | undefined): Parser<string> {
  return (raw, fail) => {
    if (Array.isArray(raw)) return fail('expected a single value, got a list');
    const s = String(raw).trim();
    const problem = check?.(s);
    return problem ? fail(problem) : s;
  };
}

/** A whole number from `min` to `max`; `why` explains the bounds. */
export function integer(min: number, max: number, why = ''): Parser<number> {
  return (raw, fail) => {
    const s = text()(raw, fail);
    if (!/^-?\d+$/.test(s)) return fail(`expected an integer, got "${s}"`);
    const n = Number(s);
    return n < min || n > max ? fail(`must be ${min}-${max}${why}, got ${n}`) : n;
  };
}

/** A whole number that is `off` or from `min` to `max` (e.g. 0 = off). */
export function integerOr(off: number, min: number, max: number, why: string): Parser<number> {
  return (raw, fail) => {
    const n = integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)(raw, fail);
    return n !== off && (n < min || n > max) ? fail(`must be ${off} ${why} or ${min}-${max}, got ${n}`) : n;
  };
}

/** A decimal number from 0 to `max`. */
export function decimal(max: number): Parser<number> {
  return (raw, fail) => {
    const s = text()(raw, fail);
    if (!/^\d+(\.\d+)?$/.test(s)) return fail(`expected a number from 0 to ${max}, got "${s}"`);
    const n = Number(s);
    return n > max ? fail(`must be 0-${max}, got ${n}`) : n;
  };
}

export function boolean(): Parser<boolean> {
  return (raw, fail) => {
    const s = text()(raw, fail).toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    return fail(`expected true or false, got "${s}"`);
  };
}

/** One of `values` (compared upper-cased when `values` are upper-case). */
export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw, fail) => {
    const s = text()(raw, fail);
    const v = (values.every((x) => x === x.toUpperCase()) ? s.toUpperCase() : s) as T;
    return values.includes(v) ? v : fail(`expected ${values.map((x) => `"${x}"`).join(' or ')}, got "${s}"`);
  };
}

/** A list: a JSON array from context, or a string split on `separator`; `check` vets the whole list. */
export function list(separator: RegExp, check?: (items: string[]) => string | undefined): Parser<string[]> {
  return (raw, fail) => {
    const items = (Array.isArray(raw) ? raw.map(String) : String(raw).split(separator)).map((s) => s.trim()).filter((s) => s !== '');
    const problem = check?.(items);
    return problem ? fail(problem) : items;
  };
}

/** The first problem of any item, for list(). */
export function each(problem: (item: string, index: number) => string | undefined): (items: string[]) => string | undefined {
  return (items) => items.map(problem).find((p) => p !== undefined);
}

const SSH_KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'];

/** Why `key` is not an OpenSSH public key line, or undefined; never echoes the value. */
export function checkPublicKey(key: string): string | undefined {
  // Never echo the value: a misplaced private key must not land in logs.
  if (/PRIVATE KEY/.test(key))
    return 'looks like a PRIVATE key; only public keys go in configuration (the private key goes into the Secrets Manager secret, see README)';
  const parts = key.split(/\s+/);
  if (parts.length < 2 || !SSH_KEY_TYPES.includes(parts[0])) return `is not an OpenSSH public key line ("${SSH_KEY_TYPES.join('|')} AAAA... [comment]")`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1])) return 'has a key body that is not base64';
  // The blob starts with its own type name (uint32 length + string); a mismatch means a mangled key.
  const blob = Buffer.from(parts[1], 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len <= 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== parts[0]) {
    return `has a key body that does not encode a ${parts[0]} key`;
  }
  return undefined;
}
