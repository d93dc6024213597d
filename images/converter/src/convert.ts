/**
 * The streaming converter: bytes -> decoder -> saxes -> xmltodict-shaped JSON, with bounded memory.
 * See README.md ("Streaming algorithm") for how output order and indentation are resolved without
 * holding the document in memory.
 */
import { SaxesParser, SaxesTagPlain } from 'saxes';
import { XmlDecoder, DecodeError } from './decode';
import { Dtd, MARKER_RE, MARK_START } from './dtd';
import { CACHED_LEVELS, Rope, SpillFile, indent, leaves, newlinePad, reindent } from './rope';
import { fresh, isAllPySpace, isPySpace, jsonAscii, jsonUtf8, pyStrip, pyStripEnd } from './text';

export type Format = 'lab' | 'compact' | 'jsonl';
export const FORMATS: readonly Format[] = ['lab', 'compact', 'jsonl'];

export interface ConvertOptions {
  /** Name used in error lines and logs, e.g. a file path or s3://bucket/key. */
  readonly source: string;
  /** Output format. @default 'lab' */
  readonly format?: Format;
  /** For `jsonl`: absolute element path of a record, e.g. `/records/record`. Required for jsonl. */
  readonly recordPath?: string;
  /** Deepest element nesting accepted. @default 10000 */
  readonly maxDepth?: number;
  /** Largest input accepted, in bytes; 0 = unlimited. @default 0 */
  readonly maxInputBytes?: number;
  /**
   * Characters of one value held whole in memory: an attribute value (also after entity expansion), a
   * start tag's attributes together, a name, the DOCTYPE. Text and CDATA are not limited (they stream
   * to the spill file). @default 4194304
   */
  readonly maxValueChars?: number;
  /**
   * Entity amplification, per document, as expat bounds it: once the document read so far plus all
   * entity replacement text expanded so far pass `entityAmplificationThreshold` characters, their sum
   * may be at most this many times the document read so far. @default 100
   */
  readonly entityAmplification?: number;
  /** Characters (document + expansions) before the amplification factor applies. @default 8388608 */
  readonly entityAmplificationThreshold?: number;
  /** Distinct child element names held for the open elements together. @default 100000 */
  readonly maxChildNames?: number;
  /** Characters of one buffered value kept in memory before it spills to disk. @default 1048576 */
  readonly spillThreshold?: number;
  /** Directory for spill files. @default os.tmpdir() (honours TMPDIR) */
  readonly tmpDir?: string;
  /** Aborts the conversion between input chunks. */
  readonly signal?: AbortSignal;
}

export interface ConvertResult {
  bytesIn: number;
  bytesOut: number;
  /** jsonl: records written; lab/compact: child elements of the root. */
  records: number;
  /** Detected input encoding. */
  encoding: string;
  /** Bytes written to the spill file. */
  spilledBytes: number;
  /** Most characters held in memory at once by unfinished values (bounded by 4 x spillThreshold). */
  peakBufferedChars: number;
}

/** The input is not well-formed XML (or breaks a configured limit): exit code 65. */
export class XmlError extends Error {
  readonly malformed = true;
  constructor(
    readonly source: string,
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`${source}:${line}:${column}: ${reason}`);
  }
}

/** Receives output bytes; resolves when the consumer can take more. */
export type Sink = (chunk: Buffer) => Promise<void>;

/** The values of one child name, serialized; `s` while in memory, `rope` once parts are on disk. */
interface Slot {
  /** JSON key and colon. */
  key: MemberKey;
  count: number;
  s: string;
  rope: Rope | null;
}

function slotMem(slot: Slot): number {
  return slot.rope === null ? slot.s.length : slot.rope.mem;
}

interface Frame {
  name: string;
  /** lab: indentation level of the line where this value's closing bracket goes (predicted, see README). */
  level: number;
  /** Rendered attribute members ('' when none). */
  head: string;
  slots: Map<string, Slot> | null;
  text: string;
  /** Content is being built (always, except outside records in jsonl). */
  capture: boolean;
  /** Parser write (input chunk) during which the element opened. */
  born: number;
  /** Its slots hold values that may reference the input chunk it opened in (not copied). */
  pins: boolean;
  /** The head once moved to the spill file (see spillAll). */
  headRope: Rope | null;
  /** Text moved to the spill file, JSON-escaped without quotes; `text` holds what came after it. */
  textRope: Rope | null;
  /** Spilled whitespace after `textRope`: kept only if more non-space text follows (str.strip()). */
  textWs: Rope | null;
  /** The parent's slot for this name when an earlier sibling had it (looked up once, at the open tag). */
  slot: Slot | undefined;
}

const OUT_CHUNK = 1 << 20;
/** Output strings are joined up to this many characters before one buffer write (each call costs). */
const OUT_BATCH = 1 << 13;

/** Collects output strings, in batches, into 1 MiB buffers for the sink. */
class Output {
  private buf = Buffer.allocUnsafe(OUT_CHUNK);
  private used = 0;
  private full: Buffer[] = [];
  private pending = '';
  bytes = 0;
  constructor(
    private readonly sink: Sink,
    private readonly enc: 'latin1' | 'utf8',
  ) {}
  add(s: string): void {
    this.pending += s;
    if (this.pending.length >= OUT_BATCH) this.commit();
  }
  private commit(): void {
    if (this.pending === '') return;
    const s = this.pending;
    this.pending = '';
    const max = this.enc === 'latin1' ? s.length : s.length * 3;
    if (max > OUT_CHUNK - this.used) {
      this.seal();
      if (max > OUT_CHUNK) {
        this.full.push(Buffer.from(s, this.enc));
        return;
      }
    }
    this.used += this.buf.write(s, this.used, this.enc);
  }
  private seal(): void {
    if (this.used === 0) return;
    this.full.push(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(OUT_CHUNK);
    this.used = 0;
  }
  async maybeFlush(): Promise<void> {
    if (this.full.length) await this.drain();
  }
  async flush(): Promise<void> {
    this.commit();
    this.seal();
    await this.drain();
  }
  private async drain(): Promise<void> {
    const bufs = this.full;
    this.full = [];
    for (const b of bufs) {
      this.bytes += b.length;
      await this.sink(b);
    }
  }
  async addBuffer(buf: Buffer): Promise<void> {
    await this.flush();
    this.bytes += buf.length;
    await this.sink(buf);
  }
}

interface SaxesInternals {
  stateTable: Array<(this: SaxesInternals) => void>;
  chunk: string;
  i: number;
  entity: string;
  fail(message: string): void;
}
// saxes 6.0.0's state numbers (the version is pinned).
const S_TEXT = 13;
const S_ENTITY = 14; // inside &...;
const S_COMMENT = 17;
const S_CDATA = 20;
const S_PI_BODY = 25;
/** The parts of saxes' state that afterWrite reads. */
interface SaxesState {
  state: number;
  entityReturnState: number;
  text: string;
  name: string;
  tags: unknown[];
  attribList: Array<{ name: string; value: string }>;
}
/** Characters that end an entity name (`;`) or cannot be in one (whitespace as \s matches it). */
const NOT_IN_REFERENCE = new Uint8Array(0x10000);
for (const c of '<>&"\'=/;') NOT_IN_REFERENCE[c.charCodeAt(0)] = 1;
for (let c = 0; c < 0x10000; c++) if (/\s/.test(String.fromCharCode(c))) NOT_IN_REFERENCE[c] = 1;
const SEMICOLON = 0x3b;
const MAX_REFERENCE = 1024;

/**
 * saxes reads everything up to the next ';' as an entity name before checking it, so a bare '&' makes
 * it buffer the rest of the document (unbounded memory) and then report a misleading "unclosed tag".
 * This check runs before saxes' own entity state and fails right after the '&', as expat does.
 */
function checkEntityReferences(parser: SaxesParser<object>): void {
  const p = parser as unknown as SaxesInternals;
  const original = p.stateTable[S_ENTITY];
  if (original !== (SaxesParser.prototype as unknown as { sEntity: unknown }).sEntity) return; // layout changed: keep saxes' behaviour
  p.stateTable[S_ENTITY] = function (this: SaxesInternals) {
    // A plain scan (no regex match object): this runs once per reference, and references are common.
    const chunk = this.chunk;
    const end = chunk.length;
    let i = this.i;
    while (i < end && NOT_IN_REFERENCE[chunk.charCodeAt(i)] !== 1) i++;
    if (i < end && chunk.charCodeAt(i) !== SEMICOLON) {
      this.fail("not well-formed: '&' must start a reference such as &amp; (name, then ';')");
    } else if (i === end && this.entity.length + chunk.length - this.i > MAX_REFERENCE) {
      this.fail(`not well-formed: entity reference longer than ${MAX_REFERENCE} characters`);
    }
    original.call(this);
  };
}

/** Separators at an indentation level (lab), built once: a fresh concatenation per use costs. */
function padCache(before: string, after: string): (level: number) => string {
  const cached: string[] = [];
  return (level) => cached[level] ?? (level < CACHED_LEVELS ? (cached[level] = fresh(before + newlinePad(level) + after)) : before + newlinePad(level) + after);
}
const OPEN = padCache('{', '');
const MEMBER = padCache(',', '');
const ARRAY_OPEN = padCache('[', '');
const ARRAY_CLOSE = padCache('', ']');
const OBJECT_CLOSE = padCache('', '}');

/**
 * A member's JSON key with its colon and, per indentation level, the same preceded by the opening
 * brace or comma and line break: one flat string per use instead of three concatenated ones.
 */
class MemberKey {
  private readonly first: string[] = [];
  private readonly next: string[] = [];
  constructor(
    readonly json: string,
    private readonly lab: boolean,
    /** Characters all keys of a conversion may still cache (shared): caches stay bounded for any input. */
    private readonly budget: { left: number },
  ) {}
  /** `{` (first member) or `,`, the line break and indentation for `level` (lab), then the key. */
  at(level: number, first: boolean): string {
    const cache = first ? this.first : this.next;
    const s = cache[level];
    if (s !== undefined) return s;
    const built = (first ? (this.lab ? OPEN(level) : '{') : this.lab ? MEMBER(level) : ',') + this.json;
    if (level >= CACHED_LEVELS || this.budget.left < built.length) return built;
    this.budget.left -= built.length;
    return (cache[level] = fresh(built));
  }
}

/** Parser calls have a fixed cost: feed it at least this many bytes at a time. */
const MIN_PARSE_CHUNK = 1 << 16;

async function* coalesce(input: AsyncIterable<Uint8Array>, min: number): AsyncGenerator<Buffer> {
  let parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of input) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= min) {
      yield parts.length === 1 ? Buffer.from(parts[0].buffer, parts[0].byteOffset, parts[0].length) : Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

export async function convert(input: AsyncIterable<Uint8Array>, sink: Sink, options: ConvertOptions): Promise<ConvertResult> {
  const c = new Converter(sink, options);
  return c.run(input);
}

class Converter {
  private readonly format: Format;
  private readonly lab: boolean;
  private readonly str: (s: string) => string;
  private readonly colon: string;
  private readonly keys = new Map<string, MemberKey>();
  /** Characters of separators-plus-key strings the member keys may cache (8 MiB of one-byte strings). */
  private readonly keyBudget = { left: 1 << 23 };
  private readonly textKey: MemberKey;
  private readonly maxDepth: number;
  private readonly maxInputBytes: number;
  private readonly maxValueChars: number;
  private readonly ampFactor: number;
  private readonly ampThreshold: number;
  /** Characters of entity replacement text expanded so far (expat's "indirect" bytes). */
  private expanded = 0;
  private readonly maxChildNames: number;
  /** Distinct child names held by the open elements' slots. */
  private childNames = 0;
  /** saxes' attribute list of the tag being read, and how much of it was counted (afterWrite). */
  private attrSeen: unknown[] | null = null;
  private attrCounted = 0;
  private attrChars = 0;
  /** saxes' state numbers are the ones afterWrite expects (else it only checks the limits). */
  private readonly statesKnown: boolean;
  private readonly spillThreshold: number;
  /** Characters in all slots' memory together before every slot spills. */
  private readonly bufferBudget: number;
  private buffered = 0;
  private peakBuffered = 0;
  private readonly recordPath: string[] | null;
  private readonly parser: SaxesParser<object>;
  private readonly spill: SpillFile;
  private readonly out: Output;
  private readonly stack: Frame[] = [];
  /** jsonl: how many leading open elements match the record path. */
  private matched = 0;
  private dtd: Dtd | null = null;
  private markers = false;
  private root: { name: string; value: string | Rope } | null = null;
  /** Output produced while parsing, written (with back-pressure) after each input chunk. */
  private queue: Array<string | Rope> = [];
  /** The root's first child name once it is known to be an array: its items stream straight out. */
  private streamSlot: Slot | null = null;
  private records = 0;
  private bytesIn = 0;
  /** Counts parser writes: values may reference the current input chunk (see `fresh`). */
  private writes = 0;

  constructor(
    sink: Sink,
    private readonly options: ConvertOptions,
  ) {
    this.format = options.format ?? 'lab';
    if (!FORMATS.includes(this.format)) throw new Error(`unknown format "${this.format}" (expected ${FORMATS.join('|')})`);
    this.lab = this.format === 'lab';
    this.str = this.lab ? jsonAscii : jsonUtf8;
    this.colon = this.lab ? ': ' : ':';
    this.textKey = new MemberKey('"#text"' + this.colon, this.lab, this.keyBudget);
    this.maxDepth = options.maxDepth ?? 10000;
    this.maxInputBytes = options.maxInputBytes ?? 0;
    this.maxValueChars = options.maxValueChars ?? 1 << 22;
    this.ampFactor = options.entityAmplification ?? 100;
    this.ampThreshold = options.entityAmplificationThreshold ?? 1 << 23;
    this.maxChildNames = options.maxChildNames ?? 100_000;
    this.spillThreshold = options.spillThreshold ?? 1 << 20;
    this.bufferBudget = 4 * this.spillThreshold;
    if (this.format === 'jsonl') {
      const p = options.recordPath ?? '';
      if (!/^(\/[^/\s]+)+$/.test(p)) throw new Error(`jsonl needs a record path like /records/record (got "${p}")`);
      this.recordPath = p.slice(1).split('/');
    } else {
      this.recordPath = null;
    }
    const enc = this.lab ? 'latin1' : 'utf8'; // lab output is pure ASCII (ensure_ascii)
    this.spill = new SpillFile(enc, options.tmpDir);
    this.out = new Output(sink, enc);
    // expat parses version="1.1" documents as XML 1.0; so do we.
    this.parser = new SaxesParser({ forceXMLVersion: true, defaultXMLVersion: '1.0' });
    this.parser.on('error', (e) => this.fail(e.message.replace(/^\d+:\d+: /, '')));
    const table = (this.parser as unknown as { stateTable: unknown[] }).stateTable;
    const proto = SaxesParser.prototype as unknown as Record<string, unknown>;
    this.statesKnown =
      table[S_TEXT] === proto.sText &&
      table[S_ENTITY] === proto.sEntity &&
      table[S_COMMENT] === proto.sComment &&
      table[S_CDATA] === proto.sCData &&
      table[S_PI_BODY] === proto.sPIBody;
    checkEntityReferences(this.parser); // replaces the S_ENTITY entry: checked above first
    this.captureAttribList();
    this.parser.on('doctype', (d) => this.onDoctype(d));
    this.parser.on('opentag', (t) => this.onOpen(t as SaxesTagPlain));
    this.parser.on('text', (t) => this.onText(t));
    this.parser.on('cdata', (t) => this.onCdata(t));
    this.parser.on('closetag', () => this.onClose());
  }

  async run(input: AsyncIterable<Uint8Array>): Promise<ConvertResult> {
    const decoder = new XmlDecoder();
    const decode = (f: () => string) => {
      try {
        return f();
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        if (e.validPrefix) this.parser.write(e.validPrefix);
        return this.fail(e.message);
      }
    };
    try {
      for await (const chunk of coalesce(input, MIN_PARSE_CHUNK)) {
        this.options.signal?.throwIfAborted();
        this.bytesIn += chunk.length;
        if (this.maxInputBytes > 0 && this.bytesIn > this.maxInputBytes) {
          this.fail(`input larger than the limit of ${this.maxInputBytes} bytes (MAX_INPUT_BYTES)`);
        }
        const text = decode(() => decoder.write(chunk));
        if (text) this.write(text);
        if (this.queue.length) await this.drainQueue();
        await this.out.maybeFlush();
      }
      const tail = decode(() => decoder.end());
      if (tail) this.write(tail);
      this.parser.close();
      this.options.signal?.throwIfAborted();
      await this.drainQueue();
      if (this.root) await this.writeRoot(this.root.name, this.root.value);
      await this.out.flush();
      return {
        bytesIn: this.bytesIn,
        bytesOut: this.out.bytes,
        records: this.records,
        encoding: decoder.encoding,
        spilledBytes: this.spill.spilled,
        peakBufferedChars: this.peakBuffered,
      };
    } catch (e) {
      // A safety net under the limits: a value that still outgrew one V8 string is an input limit with
      // a position (exit 65), never an I/O error.
      if (e instanceof RangeError && /Invalid string length/.test(e.message)) {
        this.fail('a value too large to hold as one string (see the limits: MAX_VALUE_CHARS, SPILL_THRESHOLD)');
      }
      throw e;
    } finally {
      this.spill.close();
    }
  }

  private write(text: string): void {
    if (this.writes === 0 && text.charCodeAt(0) === 0xfeff) {
      // The decoder consumed the byte order mark; another one is a character before the root (expat:
      // "not well-formed (invalid token)"), which saxes would skip silently.
      this.fail('not well-formed (invalid token): a second byte order mark');
    }
    this.writes++;
    this.parser.write(text);
    this.afterWrite();
  }

  /**
   * After each input chunk: saxes keeps every value it reads (text, CDATA, comments, attribute values,
   * names, the DOCTYPE) in one string until the value ends, so one huge value would exceed V8's string
   * limit ("Invalid string length") or memory. Text and CDATA so far are taken over here (they stream
   * to the spill file), comment and processing-instruction bodies are dropped (xmltodict ignores them),
   * and anything else is an input limit (MAX_VALUE_CHARS) with the position where it was passed.
   */
  private afterWrite(): void {
    const p = this.parser as unknown as SaxesState;
    const state = this.statesKnown ? p.state : -1;
    if (state === S_TEXT || (state === S_ENTITY && p.entityReturnState === S_TEXT)) {
      if (p.text.length !== 0) {
        const t = p.text;
        p.text = '';
        // Outside the root it is whitespace (saxes checks that as it reads) that xmltodict ignores.
        if (p.tags.length !== 0) this.onText(t);
      }
    } else if (state === S_CDATA) {
      if (p.text.length !== 0) {
        const t = p.text;
        p.text = '';
        this.onCdata(t);
      }
    } else if (state === S_COMMENT || state === S_PI_BODY) {
      p.text = '';
    } else if (p.text.length > this.maxValueChars) {
      this.fail(`value longer than the limit of ${this.maxValueChars} characters (MAX_VALUE_CHARS)`);
    }
    if (p.name.length > this.maxValueChars) this.fail(`name longer than the limit of ${this.maxValueChars} characters (MAX_VALUE_CHARS)`);
    const list = p.attribList;
    if (list !== this.attrSeen) {
      this.attrSeen = list;
      this.attrCounted = this.attrChars = 0;
    }
    for (; this.attrCounted < list.length; this.attrCounted++) this.attrChars += list[this.attrCounted].name.length + list[this.attrCounted].value.length;
    if (this.attrChars > this.maxValueChars) {
      this.fail(`start tag's attributes longer than the limit of ${this.maxValueChars} characters (MAX_VALUE_CHARS)`);
    }
  }

  /** The attributes of the tag being opened, as saxes listed them (null: saxes' layout changed). */
  private attribList: Array<{ name: string; value: string }> | null = null;

  /** Keeps saxes' attribute list (name/value pairs in document order) for onOpen. */
  private captureAttribList(): void {
    type Internals = { processAttribs(): void; attribList: Array<{ name: string; value: string }> };
    const p = this.parser as unknown as Internals;
    const original = p.processAttribs;
    if (original !== (SaxesParser.prototype as unknown as { processAttribsPlain: unknown }).processAttribsPlain) return;
    p.processAttribs = () => {
      this.attribList = p.attribList; // saxes replaces (does not clear) the array afterwards
      original.call(p);
    };
  }

  /** A member key for an element name; names repeat a lot, so they are cached (up to a bound). */
  private key(name: string): MemberKey {
    return this.cachedKey(this.keys, name);
  }

  private readonly attrKeys = new Map<string, MemberKey>();
  /** A member key for an attribute ("@name"), cached like element names. */
  private attrKey(name: string): MemberKey {
    return this.cachedKey(this.attrKeys, name, '@');
  }

  private cachedKey(cache: Map<string, MemberKey>, name: string, prefix = ''): MemberKey {
    let k = cache.get(name);
    if (k === undefined) {
      k = new MemberKey(fresh(this.str(prefix + name) + this.colon), this.lab, this.keyBudget);
      // A copy as the cache key: a slice of the input chunk would keep the whole chunk alive.
      if (cache.size < 10000 && name.length <= 256) cache.set(fresh(name), k);
    }
    return k;
  }

  /** Counts entity replacement text against the document's amplification limit (expat's algorithm). */
  private readonly account = (chars: number): void => {
    this.expanded += chars;
    const direct = Math.max(1, this.parser.position);
    const total = direct + this.expanded;
    if (total >= this.ampThreshold && total / direct > this.ampFactor) {
      throw new Error(
        `entity amplification limit breached: ${this.expanded} characters of entity expansion for ${direct} characters of document ` +
          `(more than ${this.ampFactor} times, ENTITY_AMPLIFICATION_MAX; applies from ${this.ampThreshold} characters, ENTITY_AMPLIFICATION_THRESHOLD)`,
      );
    }
  };

  private fail(reason: string): never {
    throw new XmlError(this.options.source, this.parser.line, this.parser.column, reason);
  }

  private onDoctype(text: string): void {
    const dtd = Dtd.parse(text);
    this.dtd = dtd;
    if (!dtd.hasEntities) return;
    this.markers = true;
    const base = this.parser.ENTITIES;
    this.parser.ENTITIES = new Proxy(base, { get: (t, name: string) => t[name] ?? dtd.entityMarker(name) });
  }

  private onOpen(tag: SaxesTagPlain): void {
    const depth = this.stack.length + 1;
    if (depth > this.maxDepth) this.fail(`element nesting deeper than the limit of ${this.maxDepth} (MAX_DEPTH)`);
    if (tag.name.length > this.maxValueChars) this.fail(`name longer than the limit of ${this.maxValueChars} characters (MAX_VALUE_CHARS)`);
    const parent = this.stack[depth - 2];
    let capture = true;
    if (this.recordPath) {
      const path = this.recordPath;
      if (this.matched === depth - 1 && depth <= path.length && path[depth - 1] === tag.name) this.matched = depth;
      capture = (parent !== undefined && parent.capture) || (this.matched === path.length && depth === path.length);
    }
    // Predict the indentation: a name already seen under this parent will be an array item (one level
    // deeper); a first occurrence is assumed single and re-indented if a sibling of that name follows.
    const slot = parent !== undefined && parent.slots !== null ? parent.slots.get(tag.name) : undefined;
    let level = 1;
    if (parent !== undefined && this.lab) level = parent.level + (slot !== undefined ? 2 : 1);
    let head = '';
    if (capture) {
      const defaults = this.dtd?.attDefaults.get(tag.name);
      const list = this.attribList;
      if (list !== null && defaults === undefined) {
        // The parser's own list, in document order: iterating it is cheaper than for-in over the
        // attributes object (a dictionary-mode object from Object.create(null)).
        for (let i = 0; i < list.length; i++) head = this.attribute(head, level, list[i].name, list[i].value);
      } else {
        const attrs = tag.attributes as Record<string, string>;
        if (defaults) for (const [k, v] of defaults) if (!(k in attrs)) attrs[k] = v;
        for (const k in attrs) head = this.attribute(head, level, k, attrs[k]);
      }
    }
    if (this.tagChars > this.maxValueChars) {
      this.fail(`start tag's attributes longer than the limit of ${this.maxValueChars} characters after entity expansion (MAX_VALUE_CHARS)`);
    }
    this.tagChars = 0;
    this.buffered += head.length;
    this.stack.push({
      name: tag.name,
      level,
      head,
      slots: null,
      text: '',
      capture,
      born: this.writes,
      slot,
      pins: false,
      headRope: null,
      textRope: null,
      textWs: null,
    });
  }

  /** Characters of the attribute names and (expanded) values of the tag being opened. */
  private tagChars = 0;

  /** Appends one attribute member to an element's rendered head. */
  private attribute(head: string, level: number, k: string, v: string): string {
    if (this.markers && v.includes(MARK_START)) {
      try {
        v = this.dtd!.expandAttribute(v, this.maxValueChars, this.account);
      } catch (e) {
        this.fail((e as Error).message);
      }
    }
    this.tagChars += k.length + v.length;
    return head + this.attrKey(k).at(level + 1, head === '') + this.str(v);
  }

  private onText(t: string): void {
    const f = this.stack[this.stack.length - 1];
    if (f === undefined || !f.capture) return;
    if (this.markers) t = t.replace(MARKER_RE, ''); // xmltodict 0.13 drops entity references in content
    this.addText(f, t);
  }

  private onCdata(t: string): void {
    const f = this.stack[this.stack.length - 1];
    if (f === undefined || !f.capture) return;
    this.addText(f, t);
  }

  private addText(f: Frame, t: string): void {
    // Leading whitespace is stripped in the end anyway: dropping it early keeps big containers small.
    if (f.text === '' && f.textRope === null && isAllPySpace(t)) return;
    // An element open since an earlier chunk keeps text long: copy it so it pins no further chunk.
    f.text += f.born === this.writes ? t : fresh(t);
    this.buffered += t.length;
    if (f.text.length > this.spillThreshold) this.spillText(f, false);
    if (this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
    if (this.buffered > this.bufferBudget) this.spillAll();
  }

  /** A JSON string's content (no quotes) in the output format's escaping. */
  private escape(s: string): string {
    const q = this.str(s);
    return q.slice(1, q.length - 1);
  }

  /**
   * Moves an element's text to the spill file, escaped, so a text node of any size converts in bounded
   * memory. str.strip() is kept: leading whitespace is dropped, trailing whitespace is held back (in
   * memory, or on disk as `textWs`) until non-space text follows it. A high surrogate at the end waits
   * for its pair, so the escaping does not depend on where chunks end.
   */
  private spillText(f: Frame, force: boolean): void {
    const t = f.text;
    let end = t.length;
    while (end > 0 && isPySpace(t.charCodeAt(end - 1))) end--;
    const wsTail = end < t.length;
    if (!wsTail && end > 0 && (t.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
    let start = 0;
    if (f.textRope === null) while (start < end && isPySpace(t.charCodeAt(start))) start++;
    if (start < end) {
      f.textRope ??= new Rope();
      if (f.textWs !== null) f.textRope.append(f.textWs, 0);
      f.textWs = null;
      f.textRope.append(this.spill.spillString(this.escape(t.slice(start, end))), 0);
    }
    let rest = t.slice(end);
    if (wsTail && f.textRope === null) rest = ''; // all of it leading whitespace
    if (wsTail && rest !== '' && (force || rest.length > this.spillThreshold)) {
      f.textWs ??= new Rope();
      f.textWs.append(this.spill.spillString(this.escape(rest)), 0);
      rest = '';
    }
    f.text = rest;
    this.buffered -= t.length - rest.length;
  }

  private onClose(): void {
    const f = this.stack.pop()!;
    const depth = this.stack.length + 1;
    if (this.recordPath) {
      const isRecord = this.matched === this.recordPath.length && depth === this.matched;
      if (this.matched === depth) this.matched--;
      if (!f.capture) return;
      if (isRecord) {
        const v = this.render(f, false);
        this.records++;
        this.emit(v);
        this.emit('\n');
        return;
      }
    }
    const parent = this.stack[this.stack.length - 1];
    if (parent === undefined) {
      this.root = { name: f.name, value: this.render(f, false) };
      return;
    }
    if (depth === 2) {
      this.records++;
      if (this.streamSlot !== null && f.slot === this.streamSlot) {
        this.emit(this.lab ? MEMBER(parent.level + 2) : ',');
        this.emit(this.render(f, false));
        return;
      }
    }
    // A parent open since an earlier chunk may hold the value long: a copy then, so it pins no chunk.
    const copy = parent.born !== this.writes;
    if (!copy) parent.pins = true;
    const value = this.render(f, copy);
    let slots = parent.slots;
    if (slots === null) slots = parent.slots = new Map();
    let slot = f.slot;
    const before = slot === undefined ? 0 : slotMem(slot);
    let sep = '';
    if (slot === undefined) {
      if (++this.childNames > this.maxChildNames) {
        this.fail(`more than ${this.maxChildNames} distinct child element names held for the open elements (MAX_CHILD_NAMES)`);
      }
      slot = { key: this.key(f.name), count: 0, s: '', rope: null };
      slots.set(f.name, slot);
    } else if (this.lab) {
      // The name repeats: the first value moves into an array, one level deeper.
      if (slot.count === 1) {
        if (slot.rope === null) slot.s = indent(slot.s, 1);
        else reindent(slot.rope, 1);
      }
      sep = MEMBER(parent.level + 2);
    } else {
      sep = ',';
    }
    slot.count++;
    if (slot.rope === null && typeof value === 'string') {
      slot.s += sep + value;
    } else {
      if (slot.rope === null) {
        slot.rope = new Rope();
        slot.rope.push(slot.s);
        slot.s = '';
      }
      slot.rope.push(sep);
      if (typeof value === 'string') slot.rope.push(value);
      else slot.rope.append(value, 0);
    }
    if (depth === 2 && slot.count === 2 && slots.size === 1) {
      // The root's first child name repeats: the output up to its array's items is now fixed, so
      // everything so far is emitted and further items stream out without buffering (the common
      // record-file layout). A malformed document later still fails the conversion as a whole.
      this.streamSlot = slot;
      const lab = this.lab;
      const first = parent.head === '' && parent.headRope === null;
      this.emit(this.rootPrefix(parent.name));
      this.emit(parent.headRope ?? parent.head);
      this.emit(slot.key.at(parent.level + 1, first) + (lab ? ARRAY_OPEN(parent.level + 2) : '['));
      this.emit(slot.rope ?? slot.s);
      this.buffered -= parent.head.length;
      parent.head = '';
      parent.headRope = null;
      slot.rope = null;
      slot.s = '';
      this.buffered -= before;
      return;
    }
    if (slotMem(slot) > this.spillThreshold) this.spillSlot(slot);
    this.buffered += slotMem(slot) - before;
    if (this.buffered > this.peakBuffered) this.peakBuffered = this.buffered;
    if (this.buffered > this.bufferBudget) this.spillAll();
  }

  private spillSlot(slot: Slot): void {
    if (slot.rope === null) {
      slot.rope = new Rope();
      slot.rope.push(slot.s);
      slot.s = '';
    }
    this.spill.spill(slot.rope);
  }

  /** Values, texts and heads, each under the threshold, together over the budget: move them all to disk. */
  private spillAll(): void {
    for (const f of this.stack) {
      if (f.slots !== null) {
        for (const slot of f.slots.values()) {
          const m = slotMem(slot);
          if (m === 0 || slot === this.streamSlot) continue;
          this.spillSlot(slot);
          this.buffered -= m;
        }
      }
      if (f.text !== '') this.spillText(f, true);
      if (f.head !== '') {
        this.buffered -= f.head.length;
        f.headRope = this.spill.spillString(f.head);
        f.head = '';
      }
    }
  }

  /**
   * The element's xmltodict value at its (predicted) level: a string, or a rope when parts are on disk.
   * With `copy`, the string references no input chunk (see onClose).
   */
  private render(f: Frame, copy: boolean): string | Rope {
    this.buffered -= f.head.length + f.text.length;
    if (f.slots !== null) this.childNames -= f.slots.size;
    const text = f.text === '' ? '' : f.textRope === null ? pyStrip(f.text) : pyStripEnd(f.text);
    const hasHead = f.head !== '' || f.headRope !== null;
    if (!hasHead && f.slots === null) {
      if (f.textRope !== null) return this.spilledText(null, '', f, text, '');
      if (text === '') return 'null';
      return copy ? fresh(this.str(text)) : this.str(text);
    }
    const lab = this.lab;
    let s = copy && !f.pins ? fresh(f.head) : f.head;
    let first = !hasHead;
    let rope: Rope | null = f.headRope;
    if (f.slots !== null) {
      for (const slot of f.slots.values()) {
        if (slot === this.streamSlot) {
          // Already written up to its last item (always the root's first member).
          s = lab ? ARRAY_CLOSE(f.level + 1) : ']';
          first = false;
          continue;
        }
        this.buffered -= slotMem(slot);
        s += slot.key.at(f.level + 1, first);
        first = false;
        const array = slot.count > 1;
        if (array) s += lab ? ARRAY_OPEN(f.level + 2) : '[';
        if (slot.rope === null) {
          s += slot.s;
        } else if (slot.rope.hasFile) {
          rope ??= new Rope();
          rope.push(s);
          rope.append(slot.rope, 0);
          s = '';
        } else {
          s += slot.rope.flatten();
        }
        if (array) s += lab ? ARRAY_CLOSE(f.level + 1) : ']';
      }
    }
    const close = lab ? OBJECT_CLOSE(f.level) : '}';
    if (f.textRope !== null) return this.spilledText(rope, s + this.textKey.at(f.level + 1, first), f, text, close);
    if (text !== '') s += this.textKey.at(f.level + 1, first) + (copy && !f.pins ? fresh(this.str(text)) : this.str(text));
    s += close;
    if (copy && f.pins) s = fresh(s);
    if (rope === null) return s;
    rope.push(s);
    return rope;
  }

  /** `rope`, `before`, then the quoted spilled text (its in-memory end `tail` already rstripped), then `after`. */
  private spilledText(rope: Rope | null, before: string, f: Frame, tail: string, after: string): Rope {
    const r = rope ?? new Rope();
    r.push(fresh(before + '"'));
    r.append(f.textRope!, 0);
    if (tail !== '') {
      if (f.textWs !== null) r.append(f.textWs, 0);
      r.push(fresh(this.escape(tail)));
    }
    r.push('"' + after);
    return r;
  }

  /**
   * Output produced during parsing: strings go straight into the output buffers (short-lived, cheap for
   * the GC); values with parts on disk need async reads, so they and everything after them queue.
   */
  private emit(v: string | Rope): void {
    if (this.queue.length === 0 && typeof v === 'string') this.out.add(v);
    else this.queue.push(v);
  }

  private async drainQueue(): Promise<void> {
    const q = this.queue;
    this.queue = [];
    for (const v of q) {
      if (typeof v === 'string') this.out.add(v);
      else await this.writeRope(v, 0);
      await this.out.maybeFlush();
    }
  }

  private async writeRoot(name: string, value: string | Rope): Promise<void> {
    if (this.format === 'jsonl') return;
    if (this.streamSlot === null) this.out.add(this.rootPrefix(name));
    if (typeof value === 'string') this.out.add(value);
    else await this.writeRope(value, 0);
    this.out.add(this.lab ? '\n}' : '}');
  }

  private rootPrefix(name: string): string {
    return this.key(name).at(1, true);
  }

  private async writeRope(rope: Rope, extra: number): Promise<void> {
    for (const [p, ind] of leaves(rope, extra)) {
      if ('sub' in p) continue; // not reached: every linked rope is descended into
      if ('s' in p) {
        this.out.add(indent(p.s, ind));
        await this.out.maybeFlush();
        continue;
      }
      for (let off = p.off, end = p.off + p.len; off < end;) {
        const buf = await this.spill.read(off, Math.min(1 << 20, end - off));
        if (buf.length === 0) throw new Error('spill file shorter than expected');
        off += buf.length;
        if (ind === 0) await this.out.addBuffer(buf);
        else {
          this.out.add(indent(buf.toString('latin1'), ind));
          await this.out.maybeFlush();
        }
      }
    }
  }
}
