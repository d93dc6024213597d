/**
 * Minimal reading of a document's DOCTYPE, to reproduce what expat (as configured by xmltodict 0.13,
 * `disable_entities=True`) does with it, without ever loading anything external:
 * - internal general entities: references in content are DROPPED, references in attribute values are
 *   EXPANDED (the caller bounds the expansion per document, as expat's amplification limit does);
 * - external entities: dropped in content, an error in attribute values; never fetched or read;
 * - parameter entities: ignored; when the DTD has an external subset or a parameter-entity reference,
 *   undeclared entities are skipped silently (expat cannot know they are undeclared);
 * - ATTLIST default and #FIXED values are applied to elements that lack the attribute.
 */

/** Marks an entity reference inside saxes' text; U+FFFE/U+FFFF can never occur in well-formed XML. */
export const MARK_START = '\uFFFE';
export const MARK_END = '\uFFFF';
export const MARKER_RE = /\uFFFE([^\uFFFF]*)\uFFFF/g;

type Entity = { kind: 'internal'; value: string } | { kind: 'external' };

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export class Dtd {
  readonly entities = new Map<string, Entity>();
  readonly attDefaults = new Map<string, Array<[string, string]>>();
  /** Undeclared entities are not an error (external subset or parameter-entity reference present). */
  lenient = false;

  static parse(doctype: string): Dtd {
    const dtd = new Dtd();
    const open = doctype.indexOf('[');
    const head = open < 0 ? doctype : doctype.slice(0, open);
    if (/^\s*\S+\s+(SYSTEM|PUBLIC)\b/.test(head)) dtd.lenient = true;
    if (open >= 0) dtd.readSubset(doctype.slice(open + 1, doctype.lastIndexOf(']')));
    return dtd;
  }

  get hasEntities(): boolean {
    return this.entities.size > 0 || this.lenient;
  }

  private readSubset(s: string): void {
    let i = 0;
    while (i < s.length) {
      const c = s[i];
      if (/\s/.test(c)) {
        i++;
      } else if (s.startsWith('<!--', i)) {
        const e = s.indexOf('-->', i + 4);
        i = e < 0 ? s.length : e + 3;
      } else if (s.startsWith('<?', i)) {
        const e = s.indexOf('?>', i + 2);
        i = e < 0 ? s.length : e + 2;
      } else if (c === '%') {
        // A parameter-entity reference: expat does not read it (no external DTD loading).
        this.lenient = true;
        const e = s.indexOf(';', i);
        i = e < 0 ? s.length : e + 1;
      } else if (c === '<') {
        const end = declEnd(s, i);
        this.readDecl(s.slice(i, end));
        i = end;
      } else {
        i++;
      }
    }
  }

  private readDecl(decl: string): void {
    const toks = tokens(decl.replace(/^<!/, '').replace(/>$/, ''));
    if (toks[0] === 'ENTITY') {
      if (toks[1] === '%') return; // parameter entity: ignored
      const name = toks[1];
      if (!name || this.entities.has(name)) return; // first declaration binds
      const def = toks[2] ?? '';
      if (def.startsWith('"') || def.startsWith("'")) {
        this.entities.set(name, { kind: 'internal', value: expandCharRefs(def.slice(1, -1)) });
      } else {
        this.entities.set(name, { kind: 'external' });
      }
    } else if (toks[0] === 'ATTLIST') {
      const elem = toks[1];
      let list = this.attDefaults.get(elem);
      let j = 2;
      while (j < toks.length) {
        const attr = toks[j++];
        const type = toks[j++] ?? '';
        if (type === 'NOTATION') j++; // its (notation list) token
        let dflt = toks[j++] ?? '';
        if (dflt === '#FIXED') dflt = toks[j++] ?? '';
        if (dflt.startsWith('"') || dflt.startsWith("'")) {
          if (!list) this.attDefaults.set(elem, (list = []));
          if (!list.some(([a]) => a === attr)) {
            list.push([attr, expandCharRefs(dflt.slice(1, -1).replace(/[\t\n\r]/g, ' '))]);
          }
        }
      }
    }
  }

  /**
   * The value saxes should insert for `&name;`: a marker resolved later (dropped in text, expanded in
   * attribute values), or undefined for an undeclared entity (saxes then reports "undefined entity").
   */
  entityMarker(name: string): string | undefined {
    if (this.entities.has(name) || this.lenient) return MARK_START + name + MARK_END;
    return undefined;
  }

  /** Per entity: characters of its full expansion and of replacement text read to expand it. */
  private readonly sizes = new Map<string, { size: number; cost: number }>();
  private readonly texts = new Map<string, string>();

  /**
   * Expands markers in an attribute value; throws on external entities or recursion. `account` is told
   * the replacement text each reference makes the parser read (each entity's own text, once per use:
   * a nested entity's text counts once per time it is expanded, not again at every level above it, as
   * in expat) and may throw; the expanded value may not pass `maxChars` characters. Sizes and costs
   * are computed per entity (numbers only) before any text is built, so a billion laughs costs no time.
   */
  expandAttribute(value: string, maxChars: number, account: (chars: number) => void): string {
    const out: string[] = [];
    let size = 0;
    const markers = new RegExp(MARKER_RE.source, 'g');
    let from = 0;
    const add = (s: string) => {
      size += s.length;
      out.push(s);
    };
    for (let m; (m = markers.exec(value)); from = markers.lastIndex) {
      if (m.index > from) add(value.slice(from, m.index));
      const name = m[1];
      const predefined = PREDEFINED[name];
      if (predefined !== undefined) {
        add(predefined);
        continue;
      }
      const info = this.measure(name, []);
      account(info.cost);
      if (size + info.size > maxChars) {
        throw new Error(`attribute value longer than the limit of ${maxChars} characters after entity expansion (MAX_VALUE_CHARS)`);
      }
      add(this.text(name));
    }
    if (from < value.length) add(value.slice(from));
    return out.join('');
  }

  /** The references in an entity's replacement text, split into literal parts and entity names. */
  private static parts(value: string): Array<{ lit: string } | { ref: string }> {
    const parts: Array<{ lit: string } | { ref: string }> = [];
    const re = /&([^&;\s]+);/g;
    let from = 0;
    for (let m; (m = re.exec(value)); from = re.lastIndex) {
      if (m.index > from) parts.push({ lit: value.slice(from, m.index) });
      if (m[1].startsWith('#')) parts.push({ lit: expandCharRefs(m[0]) });
      else if (PREDEFINED[m[1]] !== undefined) parts.push({ lit: PREDEFINED[m[1]] });
      else parts.push({ ref: m[1] });
    }
    if (from < value.length) parts.push({ lit: value.slice(from) });
    return parts;
  }

  private measure(name: string, stack: string[]): { size: number; cost: number } {
    const known = this.sizes.get(name);
    if (known) return known;
    const ent = this.entities.get(name);
    if (!ent) {
      if (this.lenient) return { size: 0, cost: 0 };
      throw new Error(`undefined entity: ${name}`);
    }
    if (ent.kind === 'external') throw new Error(`reference to external entity in attribute: ${name}`);
    if (stack.includes(name)) throw new Error(`recursive entity reference: ${name}`);
    if (stack.length >= 64) throw new Error('entity nesting too deep');
    const r = { size: 0, cost: ent.value.length };
    for (const p of Dtd.parts(ent.value)) {
      if ('lit' in p) r.size += p.lit.length;
      else {
        const sub = this.measure(p.ref, [...stack, name]);
        r.size += sub.size;
        r.cost += sub.cost;
      }
    }
    this.sizes.set(name, r);
    return r;
  }

  /** The full expansion of an entity already measured (so its size is known to be within bounds). */
  private text(name: string): string {
    let t = this.texts.get(name);
    if (t !== undefined) return t;
    const ent = this.entities.get(name);
    if (!ent || ent.kind !== 'internal') return '';
    t = Dtd.parts(ent.value)
      .map((p) => ('lit' in p ? p.lit : this.text(p.ref)))
      .join('');
    this.texts.set(name, t);
    return t;
  }
}

function declEnd(s: string, i: number): number {
  let quote = '';
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '>') {
      return j + 1;
    }
  }
  return s.length;
}

/** Splits a declaration body into names, quoted literals (kept with quotes) and parenthesised groups. */
function tokens(body: string): string[] {
  const out: string[] = [];
  const re = /"[^"]*"|'[^']*'|\([^)]*\)|[^\s"'()]+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) out.push(m[0]);
  return out;
}

function expandCharRefs(s: string): string {
  return s.replace(/&#(x[0-9a-fA-F]+|[0-9]+);/g, (_m, n: string) => String.fromCodePoint(n[0] === 'x' ? parseInt(n.slice(1), 16) : parseInt(n, 10)));
}
