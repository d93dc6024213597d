/** JSON string/key rendering and Python-compatible whitespace stripping. */

// Characters for which Python's str.isspace() is true: xmltodict strips with str.strip(), which differs
// from String.prototype.trim() (U+0085 and U+001C-U+001F are stripped, U+FEFF is not).
const PY_SPACE = new Uint8Array(0x3001);
for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]) {
  PY_SPACE[c] = 1;
}
for (let c = 0x2000; c <= 0x200a; c++) PY_SPACE[c] = 1;

function isPySpace(code: number): boolean {
  return code <= 0x3000 && PY_SPACE[code] === 1;
}

/** Python `str.strip()` with no arguments. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPySpace(s.charCodeAt(start))) start++;
  while (end > start && isPySpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

const NON_ASCII = /[\x7f-\uffff]/;
const NON_ASCII_RUNS = /[\x7f-\uffff]+/g;
const HEX: string[] = [];

function escapeRun(run: string): string {
  let out = '';
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    out += HEX[c] ??= '\\u' + c.toString(16).padStart(4, '0');
  }
  return out;
}

/**
 * Python's ensure_ascii applied to JSON text: DEL and every non-ASCII UTF-16 code unit becomes
 * `\uXXXX` (lowercase; astral characters become surrogate pairs). Such characters occur only inside
 * JSON strings and the escape does not depend on context, so it runs once over large batches of output
 * instead of once per string.
 */
export function asciiEscape(s: string): string {
  return NON_ASCII.test(s) ? s.replace(NON_ASCII_RUNS, escapeRun) : s;
}

const SAFE_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Python `json.dumps(s)` with ensure_ascii=True: JSON.stringify already escapes `"`, `\` and C0
 * controls exactly like Python (\b \t \n \f \r, else \u00xx lowercase) and lone surrogates as
 * \udxxx; Python also escapes DEL and every non-ASCII UTF-16 code unit (`asciiEscape`).
 */
export function jsonAscii(s: string): string {
  // Short printable ASCII strings (the common case) skip JSON.stringify's fixed cost; see jsonUtf8.
  if (s.length <= FRESH_CONCAT_MAX && SAFE_ASCII.test(s)) return '"' + s + '"';
  return asciiEscape(JSON.stringify(s));
}

const NEEDS_ESCAPE = /[\x00-\x1f"\\\ud800-\udfff]/;
/**
 * Shorter strings are never slices of another string in V8 (SlicedString::kMinLength is 13), so
 * concatenating them makes a copy, as JSON.stringify does, and the result pins no input chunk.
 */
const FRESH_CONCAT_MAX = 11;

/** Plain JSON string (UTF-8 output). */
export function jsonUtf8(s: string): string {
  // Short strings without anything to escape (the common case) skip JSON.stringify's fixed cost.
  // Longer ones go through JSON.stringify, which always returns a fresh string: a slice of the
  // parser's input chunk would keep the whole chunk alive while the value sits in a buffer.
  return s.length <= FRESH_CONCAT_MAX && !NEEDS_ESCAPE.test(s) ? '"' + s + '"' : JSON.stringify(s);
}

/** True when every character is Python whitespace (or the string is empty). */
export function isAllPySpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPySpace(s.charCodeAt(i))) return false;
  return true;
}
