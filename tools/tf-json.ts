// The one reader of synthesized Terraform JSON (cdktf.out or a test's outdir: manifest.json and each
// stack's cdk.tf.json) and the one scanner of Terraform `${...}` references in its strings. Scripts
// (npm start, review, the local run, terraform tests, benchmarks) and tests all read through it.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Attributes of one resource, data source or provider block, as synthesized. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Terraform blocks are schemaless JSON here; each reader knows its resource type's shape.
export type Block = Record<string, any>;

/** A synthesized stack's cdk.tf.json, parsed. */
export interface StackJson {
  terraform?: Block;
  provider?: Record<string, Block[]>;
  resource?: Record<string, Record<string, Block>>;
  data?: Record<string, Record<string, Block>>;
  output?: Record<string, { value: unknown; description?: string; sensitive?: boolean }>;
}

/** One stack of a synthesized app. */
export interface SynthStack {
  readonly name: string;
  /** Folder holding cdk.tf.json. */
  readonly dir: string;
  readonly json: StackJson;
  /** Number of resources (all types). */
  readonly resourceCount: number;
  /** Providers the stack configures (e.g. aws, docker). */
  readonly providers: string[];
  /** All resources of a type, by logical name. */
  resources(type: string): Record<string, Block>;
  /** The only resource of a type (throws if there are 0 or several). */
  only(type: string): Block;
}

/** Every stack of a synthesized app by name, and the folder of each. */
export interface SynthesizedApp {
  readonly outdir: string;
  readonly stacks: Record<string, StackJson>;
  readonly dirs: Record<string, string>;
}

interface Manifest {
  stacks: Record<string, { name: string; synthesizedStackPath: string; dependencies?: string[] }>;
}

function readJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message} (synthesize first: npm run synth)`, { cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

function stackAt(name: string, file: string): SynthStack {
  const json = readJson<StackJson>(file);
  const resources = (type: string) => json.resource?.[type] ?? {};
  return {
    name,
    dir: path.dirname(file),
    json,
    resourceCount: Object.values(json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0),
    providers: Object.keys(json.provider ?? {}),
    resources,
    only: (type) => {
      const all = Object.values(resources(type));
      if (all.length !== 1) throw new Error(`expected exactly one ${type} in stack ${name} (${file}), found ${all.length}`);
      return all[0];
    },
  };
}

/** One stack of a synthesized app, from `outdir/stacks/NAME/cdk.tf.json`. */
export function readStack(outdir: string, name: string): SynthStack {
  return stackAt(name, path.join(outdir, 'stacks', name, 'cdk.tf.json'));
}

/** Every stack the app's manifest lists, in deploy (dependency) order; ties by name. */
export function listStacks(outdir: string): SynthStack[] {
  const manifest = readJson<Manifest>(path.join(outdir, 'manifest.json'));
  const ordered: Manifest['stacks'][string][] = [];
  const visit = (name: string, chain: string[]) => {
    if (ordered.some((s) => s.name === name)) return;
    if (chain.includes(name)) throw new Error(`stack dependency cycle: ${[...chain, name].join(' -> ')}`);
    const entry = manifest.stacks[name];
    if (!entry) throw new Error(`${path.join(outdir, 'manifest.json')}: stack ${chain[chain.length - 1]} depends on ${name}, which it does not list`);
    for (const dep of [...(entry.dependencies ?? [])].sort()) visit(dep, [...chain, name]);
    ordered.push(entry);
  };
  for (const name of Object.keys(manifest.stacks).sort()) visit(name, []);
  return ordered.map((s) => stackAt(s.name, path.join(outdir, s.synthesizedStackPath)));
}

/** Every stack of a synthesized app, by name (alphabetically, so reports read in a stable order). */
export function readApp(outdir: string): SynthesizedApp {
  const stacks: Record<string, StackJson> = {};
  const dirs: Record<string, string> = {};
  for (const s of listStacks(outdir).sort((a, b) => a.name.localeCompare(b.name))) {
    stacks[s.name] = s.json;
    dirs[s.name] = s.dir;
  }
  return { outdir, stacks, dirs };
}

/** Every resource of an app: [stack, type, logical name, block]. */
export function allResources(app: SynthesizedApp): [string, string, string, Block][] {
  const out: [string, string, string, Block][] = [];
  for (const [stack, json] of Object.entries(app.stacks)) {
    for (const [type, byName] of Object.entries(json.resource ?? {})) {
      for (const [name, block] of Object.entries(byName)) out.push([stack, type, name, block]);
    }
  }
  return out;
}

/**
 * Splits text into literal parts and `${...}` Terraform expressions (the text between the braces).
 * Braces inside quoted strings do not count, and quotes may appear raw (`"`, as cdktf writes a reference
 * into a string) or JSON-escaped (`\"`, inside a JSON document held in a string, such as a container
 * definition or a policy).
 */
export function splitTerraformRefs(text: string): (string | { expr: string })[] {
  const parts: (string | { expr: string })[] = [];
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) break;
    if (start > i) parts.push(text.slice(i, start));
    let depth = 1;
    let quote = false;
    let j = start + 2;
    for (; j < text.length; j++) {
      const c = text[j];
      if (c === '\\' && text[j + 1] === '"') {
        quote = !quote;
        j++;
      } else if (c === '"') quote = !quote;
      else if (quote && c === '\\') j++;
      else if (!quote && c === '{') depth++;
      else if (!quote && c === '}' && --depth === 0) break;
    }
    if (j >= text.length) throw new Error(`unterminated Terraform expression at offset ${start}: ${text.slice(start, start + 60)}`);
    parts.push({ expr: text.slice(start + 2, j) });
    i = j + 1;
  }
  if (i < text.length) parts.push(text.slice(i));
  return parts;
}

/**
 * Replaces each `${...}` in synthesized text with a placeholder (`TF_REF_<n>`), so JSON held in a
 * string (a container definition, a state machine definition) parses even where an expression holds
 * quotes. The same expression always gets the same placeholder. Returns the text and each expression
 * (with its `${...}`) by placeholder.
 */
export function maskTerraformRefs(text: string): { text: string; refs: Record<string, string> } {
  const refs: Record<string, string> = {};
  const byExpression = new Map<string, string>();
  const out = splitTerraformRefs(text).map((p) => {
    if (typeof p === 'string') return p;
    const expression = `\${${p.expr}}`;
    let name = byExpression.get(expression);
    if (!name) {
      name = `TF_REF_${byExpression.size}`;
      byExpression.set(expression, name);
      refs[name] = expression;
    }
    return name;
  });
  return { text: out.join(''), refs };
}

/** Parses JSON held in a synthesized string, with each `${...}` kept as written in the string values. */
export function parseWithRefs<T = unknown>(text: string): T {
  const { text: masked, refs } = maskTerraformRefs(text);
  return JSON.parse(masked, (_k, v: unknown) => (typeof v === 'string' ? v.replace(/TF_REF_\d+/g, (m) => refs[m] ?? m) : v)) as T;
}
