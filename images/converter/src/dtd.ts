/**
 * Minimal reading of a document's DOCTYPE, to reproduce what expat (as configured by xmltodict 0.13,
 * `disable_entities=True`) does with it, without ever loading anything external:
 * - internal general entities: references in content are DROPPED, references in attribute values are
 *   EXPANDED (bounded: `maxExpansion` characters per attribute value);
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
        let type = toks[j++] ?? '';
        if (type === 'NOTATION') type += toks[j++];
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

  /** Expands markers in an attribute value; throws on external entities, recursion or excess size. */
  expandAttribute(value: string, maxExpansion: number): string {
    let budget = maxExpansion;
    const expand = (name: string, depth: number, stack: string[]): string => {
      const predefined = PREDEFINED[name];
      if (predefined !== undefined) return predefined;
      const ent = this.entities.get(name);
      if (!ent) {
        if (this.lenient) return '';
        throw new Error(`undefined entity: ${name}`);
      }
      if (ent.kind === 'external') throw new Error(`reference to external entity in attribute: ${name}`);
      if (stack.includes(name)) throw new Error(`recursive entity reference: ${name}`);
      if (depth > 64) throw new Error('entity nesting too deep');
      const out = ent.value.replace(/&([^&;\s]+);/g, (_m, n: string) => {
        if (n.startsWith('#')) return expandCharRefs(`&${n};`);
        return expand(n, depth + 1, [...stack, name]);
      });
      budget -= out.length;
      if (budget < 0) throw new Error(`entity expansion limit exceeded (${maxExpansion} characters)`);
      return out;
    };
    return value.replace(MARKER_RE, (_m, name: string) => expand(name, 0, []));
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
  return s.replace(/&#(x[0-9a-fA-F]+|[0-9]+);/g, (_m, n: string) =>
    String.fromCodePoint(n[0] === 'x' ? parseInt(n.slice(1), 16) : parseInt(n, 10)),
  );
}
