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
const HEX: string[] = [];

/**
 * Python `json.dumps(s)` with ensure_ascii=True: JSON.stringify already escapes `"`, `\` and C0 controls
 * exactly like Python (\b \t \n \f \r, else \u00xx lowercase); Python also escapes DEL and every
 * non-ASCII UTF-16 code unit (astral characters become surrogate pairs).
 */
export function jsonAscii(s: string): string {
  // Always a fresh string: a slice of the parser's input chunk would keep the whole chunk alive
  // while the value sits in a buffer.
  const j = JSON.stringify(s);
  if (!NON_ASCII.test(j)) return j;
  let out = '';
  let last = 0;
  for (let i = 0; i < j.length; i++) {
    const c = j.charCodeAt(i);
    if (c >= 0x7f) {
      out += j.slice(last, i) + (HEX[c] ??= '\\u' + c.toString(16).padStart(4, '0'));
      last = i + 1;
    }
  }
  return out + j.slice(last);
}

/** Plain JSON string (UTF-8 output). */
export function jsonUtf8(s: string): string {
  return JSON.stringify(s);
}

/** True when every character is Python whitespace (or the string is empty). */
export function isAllPySpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPySpace(s.charCodeAt(i))) return false;
  return true;
}
