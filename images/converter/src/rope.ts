/**
 * Serialized JSON as a list of in-memory strings and ranges of a temp (spill) file.
 *
 * Values are serialized at their predicted indentation level (see README); when a prediction turns out
 * one level short (a first occurrence that becomes an array item), in-memory text is re-indented at
 * once and file ranges get `ind` raised, applied while they are copied out: 4*ind spaces after every
 * newline. JSON strings never contain a raw newline, so this textual operation is safe.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface StrPiece {
  s: string;
  ind: number;
}
export interface FilePiece {
  off: number;
  len: number;
  ind: number;
}
/** Another rope, `ind` levels deeper: appending a long rope is O(1), not a copy of its pieces. */
export interface SubPiece {
  sub: Rope;
  ind: number;
}
export type Piece = StrPiece | FilePiece | SubPiece;
export type Leaf = StrPiece | FilePiece;

/** Below this many pieces a rope's pieces are copied when appended; longer ropes are linked. */
const LINK_PIECES = 8;

/**
 * The leaves of a rope in order, each with its total indentation; linked ropes for which `descend`
 * says no come out whole. Iterative: nesting can be as deep as the document (a recursive walk would
 * overflow the stack).
 */
export function* leaves(rope: Rope, extra = 0, descend: (sub: Rope) => boolean = () => true): Generator<[Leaf | SubPiece, number]> {
  const stack: Array<{ pieces: Piece[]; i: number; ind: number }> = [{ pieces: rope.pieces, i: 0, ind: extra }];
  while (stack.length !== 0) {
    const top = stack[stack.length - 1];
    if (top.i >= top.pieces.length) {
      stack.pop();
      continue;
    }
    const p = top.pieces[top.i++];
    if ('sub' in p && descend(p.sub)) stack.push({ pieces: p.sub.pieces, i: 0, ind: top.ind + p.ind });
    else yield [p, top.ind + p.ind];
  }
}

/**
 * Separators are cached per indentation level up to this level only: a cache over 10,000 levels would
 * hold 4 x 10,000^2 / 2 spaces (200 MB) per kind of separator. Deeper levels are built per use, which
 * costs as much as writing them out.
 */
export const CACHED_LEVELS = 256;
const PADS: string[] = [];
/** "\n" followed by `ind` indentation levels. */
export function newlinePad(ind: number): string {
  let p = PADS[ind];
  if (p === undefined) {
    p = '\n' + ' '.repeat(4 * ind);
    if (ind < CACHED_LEVELS) PADS[ind] = p;
  }
  return p;
}

export function indent(s: string, ind: number): string {
  return ind === 0 ? s : s.replaceAll('\n', newlinePad(ind));
}

export class Rope {
  pieces: Piece[] = [];
  /** Characters held in memory. */
  mem = 0;
  hasFile = false;

  push(s: string, ind = 0): void {
    const last = this.pieces[this.pieces.length - 1];
    if (last !== undefined && 's' in last && last.ind === ind) last.s += s;
    else this.pieces.push({ s, ind });
    this.mem += s.length;
  }

  /** Appends another rope (which the caller gives up), `extra` levels deeper. */
  append(other: Rope, extra: number): void {
    if (other.pieces.length > LINK_PIECES) {
      this.pieces.push({ sub: other, ind: extra });
      this.mem += other.mem;
    } else {
      for (const p of other.pieces) {
        if ('s' in p) this.push(p.s, p.ind + extra);
        else if ('sub' in p) {
          this.pieces.push({ sub: p.sub, ind: p.ind + extra });
          this.mem += p.sub.mem;
        } else this.pieces.push({ off: p.off, len: p.len, ind: p.ind + extra });
      }
    }
    this.hasFile ||= other.hasFile;
  }

  /** Everything as one string (only for ropes without file pieces). */
  flatten(): string {
    let out = '';
    for (const [p, ind] of leaves(this)) out += indent((p as StrPiece).s, ind);
    return out;
  }
}

/** Moves a rope's content one or more levels deeper (its value became an array item). */
export function reindent(rope: Rope, extra: number): void {
  for (const p of rope.pieces) {
    if ('s' in p) {
      const before = p.s.length;
      p.s = indent(p.s, p.ind + extra);
      p.ind = 0;
      rope.mem += p.s.length - before;
    } else {
      p.ind += extra; // file ranges and linked ropes: applied when written out
    }
  }
}

/**
 * One append-only temp file per conversion. It is unlinked right after creation, so the space is
 * returned when the descriptor closes, even if the process is killed.
 */
export class SpillFile {
  private fd = -1;
  private size = 0;
  /** Bytes written to disk so far. */
  spilled = 0;

  constructor(
    private readonly encoding: 'latin1' | 'utf8',
    private readonly dir = os.tmpdir(),
  ) {}

  /** Moves the rope's in-memory pieces to disk (indentation applied), keeping its order. */
  spill(rope: Rope): void {
    if (this.fd < 0) {
      const tmp = fs.mkdtempSync(path.join(this.dir, 'xml2json-'));
      const file = path.join(tmp, 'spill');
      this.fd = fs.openSync(file, 'w+', 0o600);
      fs.unlinkSync(file);
      fs.rmdirSync(tmp);
    }
    const out: Piece[] = [];
    let text = '';
    const flush = () => {
      if (!text) return;
      const len = fs.writeSync(this.fd, text, this.size, this.encoding);
      const last = out[out.length - 1];
      if (last !== undefined && 'off' in last && last.ind === 0 && last.off + last.len === this.size) last.len += len;
      else out.push({ off: this.size, len, ind: 0 });
      this.size += len;
      this.spilled += len;
      text = '';
    };
    // Linked ropes already on disk stay linked; those holding memory are walked.
    for (const [p, ind] of leaves(rope, 0, (sub) => sub.mem !== 0)) {
      if ('s' in p) {
        text += indent(p.s, ind);
        if (text.length > 1 << 22) flush();
      } else {
        flush();
        out.push('sub' in p ? { sub: p.sub, ind } : { off: p.off, len: p.len, ind });
      }
    }
    flush();
    rope.pieces = out;
    rope.mem = 0;
    rope.hasFile = true;
  }

  /** Writes `s` to disk and returns it as a rope of file pieces (no memory held). */
  spillString(s: string): Rope {
    const r = new Rope();
    r.push(s);
    this.spill(r);
    return r;
  }

  read(off: number, len: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const buf = Buffer.allocUnsafe(len);
      fs.read(this.fd, buf, 0, len, off, (err, n) => (err ? reject(err) : resolve(n === len ? buf : buf.subarray(0, n))));
    });
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
