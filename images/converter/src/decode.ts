/**
 * Streaming byte -> string decoding with XML encoding detection: byte order mark first, then the
 * `encoding` of the XML declaration, else UTF-8. UTF-8 and UTF-16 are decoded strictly (invalid bytes
 * are an error, as in expat); other declared encodings (ISO-8859-x, windows-125x, Shift_JIS, EUC-JP,
 * GB18030, ...) go through iconv-lite's streaming decoders. An unknown encoding is an error.
 */
import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import * as iconv from 'iconv-lite';

export class DecodeError extends Error {
  constructor(
    message: string,
    /** Text decoded before the bad bytes (to be fed to the parser so positions are right). */
    readonly validPrefix = '',
  ) {
    super(message);
  }
}

interface Inner {
  write(buf: Buffer): string;
  end(): string;
}

/** Strict streaming decoder for encodings TextDecoder knows, reporting the first bad byte. */
class StrictDecoder implements Inner {
  private readonly td: TextDecoder;
  constructor(private readonly label: string) {
    this.td = new TextDecoder(label, { fatal: true, ignoreBOM: false });
  }
  write(buf: Buffer): string {
    try {
      return this.td.decode(buf, { stream: true });
    } catch {
      const loose = new TextDecoder(this.label).decode(buf, { stream: true });
      const bad = loose.indexOf('\uFFFD');
      throw new DecodeError(`not well-formed (invalid ${this.label} byte sequence)`, bad < 0 ? '' : loose.slice(0, bad));
    }
  }
  end(): string {
    try {
      return this.td.decode();
    } catch {
      throw new DecodeError(`not well-formed (truncated ${this.label} byte sequence at end of input)`);
    }
  }
}

/**
 * UTF-8 via Buffer#toString after a whole-chunk validity check (both SIMD in node): several times
 * faster than a fatal TextDecoder. A character split across chunks is carried to the next one.
 */
class Utf8Decoder implements Inner {
  private tail: Buffer | null = null;
  private first = true;
  write(chunk: Buffer): string {
    let buf = this.tail ? Buffer.concat([this.tail, chunk]) : chunk;
    this.tail = null;
    if (this.first) {
      this.first = false;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    const end = completeEnd(buf);
    if (end < buf.length) this.tail = Buffer.from(buf.subarray(end));
    const part = end < buf.length ? buf.subarray(0, end) : buf;
    if (!isUtf8(part)) return new StrictDecoder('utf-8').write(part); // throws, with the valid prefix
    return part.toString('utf8');
  }
  end(): string {
    if (this.tail) throw new DecodeError('not well-formed (truncated utf-8 byte sequence at end of input)');
    return '';
  }
}

/** Length of the prefix that does not end inside a multi-byte sequence (invalid bytes are kept). */
function completeEnd(buf: Buffer): number {
  const n = buf.length;
  for (let i = n - 1, k = 0; i >= 0 && k < 4; i--, k++) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > n ? i : n;
  }
  return n;
}

/**
 * iconv-lite decoders turn bytes the encoding does not define (0x81 in windows-1252, a bad multi-byte
 * sequence) into U+FFFD; expat (with Python's codecs) rejects them, so this does too. U+FFFD itself
 * cannot be written in these encodings, except GB18030's 84 31 A4 37, which is refused as well.
 */
class IconvDecoder implements Inner {
  private readonly dec: ReturnType<typeof iconv.getDecoder>;
  constructor(private readonly encoding: string) {
    this.dec = iconv.getDecoder(encoding, { stripBOM: true });
  }
  write(buf: Buffer): string {
    return this.check(this.dec.write(buf));
  }
  end(): string {
    return this.check(this.dec.end() ?? '');
  }
  protected check(text: string): string {
    const bad = text.indexOf('\uFFFD');
    if (bad >= 0) throw new DecodeError(`not well-formed (invalid token): a byte sequence ${this.encoding} does not define`, text.slice(0, bad));
    return text;
  }
}

/** CP932 (Windows-31J) characters that Shift_JIS (JIS X 0208, as Python's shift_jis codec) maps elsewhere. */
const SJIS_FROM_CP932: Record<string, string> = {
  '\uFF5E': '\u301C',
  '\u2225': '\u2016',
  '\uFF0D': '\u2212',
  '\uFFE0': '\u00A2',
  '\uFFE1': '\u00A3',
  '\uFFE2': '\u00AC',
};
const CP932_ONLY = /[\uFF5E\u2225\uFF0D\uFFE0\uFFE1\uFFE2]/g;

/**
 * Shift_JIS as the standard (JIS X 0208) defines it, not Microsoft's CP932 that iconv-lite's
 * "shift_jis" decodes: CP932's extension rows (lead bytes 0x87, 0xED-0xEE, 0xF0-0xFC: NEC and IBM
 * extensions, user-defined area) and the single byte 0x80 are errors, and the six characters that
 * CP932 maps differently (0x8160 WAVE DASH, ...) get the JIS mapping. Documents in CP932 declare
 * `windows-31j` or `cp932`.
 */
class ShiftJisDecoder extends IconvDecoder {
  /** A lead byte seen at the end of the previous chunk. */
  private lead = false;
  constructor() {
    super('cp932');
  }
  write(buf: Buffer): string {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (this.lead) {
        this.lead = false;
        continue;
      }
      if ((b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc)) {
        if (b === 0x87 || b === 0xed || b === 0xee || b >= 0xf0) {
          const prefix = super.write(buf.subarray(0, i));
          throw new DecodeError('not well-formed (invalid token): a CP932 extension byte sequence, not Shift_JIS (declare windows-31j for CP932)', map(prefix));
        }
        this.lead = true;
      } else if (b === 0x80) {
        throw new DecodeError('not well-formed (invalid token): byte 0x80 is not Shift_JIS', map(super.write(buf.subarray(0, i))));
      }
    }
    return map(super.write(buf));
  }
}

function map(text: string): string {
  return text.replace(CP932_ONLY, (c) => SJIS_FROM_CP932[c]);
}

const SHIFT_JIS = new Set(['shift_jis', 'shift-jis', 'shiftjis', 'sjis', 's_jis', 'x-sjis', 'csshiftjis']);
const UTF8 = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

const HEAD_LIMIT = 1024;

export class XmlDecoder {
  private head: Buffer | null = Buffer.alloc(0);
  private inner: Inner | null = null;
  /** The encoding in use once known (e.g. "utf-8", "shift_jis"). */
  encoding = '';

  write(chunk: Buffer): string {
    if (this.inner) return this.inner.write(chunk);
    this.head = Buffer.concat([this.head!, chunk]);
    if (!this.ready(this.head, false)) return '';
    return this.start();
  }

  end(): string {
    let out = '';
    if (!this.inner) {
      this.ready(this.head!, true);
      out = this.start();
    }
    return out + this.inner!.end();
  }

  private start(): string {
    const head = this.head!;
    this.head = null;
    this.inner = this.choose(head);
    return this.inner.write(head);
  }

  /** Enough bytes to decide: the whole XML declaration, or none, or HEAD_LIMIT bytes. */
  private ready(head: Buffer, eof: boolean): boolean {
    if (eof || head.length >= HEAD_LIMIT) return true;
    if (head.length < 4) return false;
    const text = sniff(head).text;
    if (!text.startsWith('<?xml'.slice(0, text.length)) || (text.length >= 5 && !text.startsWith('<?xml'))) return true;
    return text.includes('?>');
  }

  /**
   * The byte order mark, else the first bytes (XML 1.0 appendix F), give the family; the declaration's
   * encoding must agree with it, as in expat ("encoding specified in XML declaration is incorrect"),
   * with one stricter rule: after a UTF-8 BOM only UTF-8 (or US-ASCII) may be declared (XML 1.0 4.3.3;
   * expat decodes such a document in the declared encoding).
   */
  private choose(head: Buffer): Inner {
    const { bom, family, text } = sniff(head);
    const m = /^<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([^"']*)\1/.exec(text);
    const declared = m ? m[2].toLowerCase() : undefined;
    const incorrect = (what: string) => new DecodeError(`encoding specified in XML declaration is incorrect: "${m![2]}" in a document that ${what}`);
    if (family === 'utf-16le' || family === 'utf-16be') {
      if (declared !== undefined && declared !== 'utf-16' && declared !== family) {
        throw incorrect(bom ? `starts with a ${family.toUpperCase()} byte order mark` : `is ${family.toUpperCase()}`);
      }
      return this.use(family, new StrictDecoder(family));
    }
    if (declared === undefined || UTF8.has(declared)) return this.use('utf-8', new Utf8Decoder());
    if (bom) throw incorrect('starts with a UTF-8 byte order mark');
    if (declared.startsWith('utf-16') || declared.startsWith('utf-32') || declared === 'ucs-2') throw incorrect('is not in that encoding');
    if (SHIFT_JIS.has(declared)) return this.use('shift_jis', new ShiftJisDecoder());
    if (!/^[a-z][a-z0-9._:-]*$/.test(declared) || !iconv.encodingExists(declared)) {
      throw new DecodeError(`unknown encoding: ${m![2]}`);
    }
    return this.use(declared, new IconvDecoder(declared));
  }

  private use(name: string, inner: Inner): Inner {
    this.encoding = name;
    return inner;
  }
}

/** The BOM, the encoding family the first bytes show, and the head as text in that family (for the declaration). */
function sniff(head: Buffer): { bom: boolean; family: string; text: string } {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { bom: true, family: 'utf-8', text: head.toString('latin1', 3) };
  if (head[0] === 0xff && head[1] === 0xfe) return { bom: true, family: 'utf-16le', text: utf16(head.subarray(2), 'utf-16le') };
  if (head[0] === 0xfe && head[1] === 0xff) return { bom: true, family: 'utf-16be', text: utf16(head.subarray(2), 'utf-16be') };
  if (head[0] === 0x3c && head[1] === 0x00 && head[2] === 0x3f && head[3] === 0x00) return { bom: false, family: 'utf-16le', text: utf16(head, 'utf-16le') };
  if (head[0] === 0x00 && head[1] === 0x3c && head[2] === 0x00 && head[3] === 0x3f) return { bom: false, family: 'utf-16be', text: utf16(head, 'utf-16be') };
  return { bom: false, family: 'ascii', text: head.toString('latin1') };
}

function utf16(buf: Buffer, label: string): string {
  return new TextDecoder(label).decode(buf.subarray(0, buf.length & ~1));
}
