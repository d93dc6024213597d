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

class IconvDecoder implements Inner {
  private readonly dec: ReturnType<typeof iconv.getDecoder>;
  constructor(encoding: string) {
    this.dec = iconv.getDecoder(encoding, { stripBOM: true });
  }
  write(buf: Buffer): string {
    return this.dec.write(buf);
  }
  end(): string {
    return this.dec.end() ?? '';
  }
}


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

  /** Enough bytes to decide: the BOM, or the whole XML declaration, or HEAD_LIMIT bytes. */
  private ready(head: Buffer, eof: boolean): boolean {
    if (eof || head.length >= HEAD_LIMIT) return true;
    if (head.length < 4) return false;
    if (head[0] === 0xfe || head[0] === 0xff || head[0] === 0x00 || head[1] === 0x00) return true;
    const ascii = head.toString('latin1');
    if (!ascii.startsWith('<?xml') && !ascii.startsWith('\xef\xbb\xbf<?xml')) return true;
    return ascii.includes('?>');
  }

  private choose(head: Buffer): Inner {
    if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return this.use('utf-8', new Utf8Decoder());
    if (head[0] === 0xff && head[1] === 0xfe) return this.use('utf-16le', new StrictDecoder('utf-16le'));
    if (head[0] === 0xfe && head[1] === 0xff) return this.use('utf-16be', new StrictDecoder('utf-16be'));
    // No BOM but "<?" in UTF-16 (XML 1.0 appendix F).
    if (head[0] === 0x3c && head[1] === 0x00 && head[2] === 0x3f && head[3] === 0x00) {
      return this.use('utf-16le', new StrictDecoder('utf-16le'));
    }
    if (head[0] === 0x00 && head[1] === 0x3c && head[2] === 0x00 && head[3] === 0x3f) {
      return this.use('utf-16be', new StrictDecoder('utf-16be'));
    }
    const m = /^<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([^"']*)\1/.exec(head.toString('latin1'));
    const declared = m ? m[2].toLowerCase() : 'utf-8';
    if (declared === 'utf-8' || declared === 'utf8' || declared === 'us-ascii' || declared === 'ascii') {
      return this.use('utf-8', new Utf8Decoder());
    }
    if (declared === 'utf-16') return this.use('utf-16le', new StrictDecoder('utf-16le'));
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
