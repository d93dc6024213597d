/** JSON string/key rendering and Python-compatible whitespace stripping. */

// Characters for which Python's str.isspace() is true: xmltodict strips with str.strip(), which differs
// from String.prototype.trim() (U+0085 and U+001C-U+001F are stripped, U+FEFF is not).
const PY_SPACE = new Uint8Array(0x3001);
for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]) {
  PY_SPACE[c] = 1;
}
for (let c = 0x2000; c <= 0x200a; c++) PY_SPACE[c] = 1;

export function isPySpace(code: number): boolean {
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

/** Python `str.rstrip()` with no arguments. */
export function pyStripEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isPySpace(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** Python json.dumps escapes (ensure_ascii) for the code units that have a short form or are below 0x20. */
const ESCAPES: string[] = [];
for (let c = 0; c < 0x20; c++) ESCAPES[c] = '\\u' + c.toString(16).padStart(4, '0');
ESCAPES[0x08] = '\\b';
ESCAPES[0x09] = '\\t';
ESCAPES[0x0a] = '\\n';
ESCAPES[0x0c] = '\\f';
ESCAPES[0x0d] = '\\r';
ESCAPES[0x22] = '\\"';
ESCAPES[0x5c] = '\\\\';

const SAFE_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Python `json.dumps(s)` with ensure_ascii=True: `"` and `\` backslash-escaped, C0 controls as \b \t \n
 * \f \r or \u00xx, DEL and every non-ASCII UTF-16 code unit as \uXXXX (lowercase hex; astral
 * characters become surrogate pairs, lone surrogates stay \udxxx). One pass, instead of JSON.stringify
 * followed by a second ensure_ascii pass.
 */
export function jsonAscii(s: string): string {
  // Printable ASCII strings (the common case) need no escaping; see jsonUtf8 about slices.
  if (SAFE_ASCII.test(s)) return '"' + s + '"';
  return jsonAsciiBytes(s);
}

const HEX = '0123456789abcdef';
/** Reused for strings that fit: one copy out of it, instead of a string built by += per escape. */
const SCRATCH = Buffer.allocUnsafe(1 << 16);

/**
 * ensure_ascii escaping through a byte buffer: concatenating the pieces costs more per escape, and
 * for a long text makes a tree of millions of cons cells (a 4M-character non-ASCII text took ~300 MB
 * that way).
 */
function jsonAsciiBytes(s: string): string {
  const max = s.length * 6 + 2;
  const buf = max <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(max);
  let n = 0;
  buf[n++] = 0x22;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      buf[n++] = c;
    } else if (c < 0x7f && ESCAPES[c] !== undefined && ESCAPES[c].length === 2) {
      buf[n++] = 0x5c;
      buf[n++] = ESCAPES[c].charCodeAt(1);
    } else {
      buf[n++] = 0x5c;
      buf[n++] = 0x75;
      buf[n++] = HEX.charCodeAt(c >> 12);
      buf[n++] = HEX.charCodeAt((c >> 8) & 15);
      buf[n++] = HEX.charCodeAt((c >> 4) & 15);
      buf[n++] = HEX.charCodeAt(c & 15);
    }
  }
  buf[n++] = 0x22;
  return buf.toString('latin1', 0, n);
}

// Control characters are exactly what JSON must escape.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\x00-\x1f"\\\ud800-\udfff]/;

/** Plain JSON string (UTF-8 output). */
export function jsonUtf8(s: string): string {
  // Strings without anything to escape (the common case) skip JSON.stringify's fixed cost. The result
  // may reference a slice of the parser's input chunk; the converter copies (`fresh`) values that it
  // keeps past the current chunk, so buffered values do not pin whole chunks.
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/**
 * A copy of `s` that references no other string: concatenating and slicing flattens into a new string
 * (a slice of the input chunk would otherwise keep the whole chunk alive).
 */
export function fresh(s: string): string {
  return (' ' + s).slice(1);
}

/** True when every character is Python whitespace (or the string is empty). */
export function isAllPySpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPySpace(s.charCodeAt(i))) return false;
  return true;
}
