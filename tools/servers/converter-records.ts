/**
 * Test helpers for the converter: the corpus location and a deterministic record-XML generator shaped
 * like the corpus' tools/gen_records.py (attributes, repeated children, entities, CDATA, non-ASCII).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CORPUS_DIR, REPO_ROOT } from '../../scripts/paths';
import { imageNode } from './image-runtime';

export { CORPUS_DIR, REPO_ROOT };
export const CONVERTER_DIR = path.join(REPO_ROOT, 'images', 'converter');
export const CLI = path.join(CONVERTER_DIR, 'dist', 'cli.js');

export const MAIN = path.join(CONVERTER_DIR, 'dist', 'main.js');

export interface CorpusCase {
  name: string;
  xml: string;
  expected?: string;
  expectedError?: string;
}

/** The corpus cases of one folder (lab, valid, invalid, beyond), sorted by name. */
export function corpusCases(folder: string): CorpusCase[] {
  const dir = path.join(CORPUS_DIR, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.xml'))
    .sort()
    .map((f) => {
      const base = path.join(dir, f.slice(0, -4));
      const exists = (p: string) => (fs.existsSync(p) ? p : undefined);
      return {
        name: `${folder}/${f}`,
        xml: path.join(dir, f),
        expected: exists(`${base}.expected.json`),
        expectedError: exists(`${base}.expected-error.txt`),
      };
    });
}

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Anna', 'Björn', 'Chloé', 'Dmitri', 'Eve', 'François', 'Hiro', 'José', 'Zoë'];
const CITIES = ['Berlin', 'Zürich', 'São Paulo', 'Kraków', 'Tōkyō', '北京', 'Reykjavík'];
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'lorem', 'ipsum', 'xml', 'json'];

/** Record XML of at least `targetBytes` bytes: `<records><record id=..>...</record>...</records>`. */
export function genRecords(targetBytes: number, seed = 42): Buffer {
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  const parts: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n<records generator="test" version="1">\n'];
  let size = parts[0].length;
  for (let i = 1; size < targetBytes; i++) {
    let rec =
      `  <record id="${i}" type="${pick(['customer', 'supplier'])}">\n` +
      `    <name>${pick(FIRST)} O&apos;Brien</name>\n` +
      `    <address kind="home"><street>${Math.floor(r() * 999)} ${pick(WORDS)} St &amp; Co</street><city>${pick(CITIES)}</city></address>\n`;
    for (let p = 0, n = 1 + Math.floor(r() * 3); p < n; p++) rec += `    <phone type="${pick(['mobile', 'work'])}">+${Math.floor(r() * 1e7)}</phone>\n`;
    for (let t = 0, n = Math.floor(r() * 4); t < n; t++) rec += `    <tag>${pick(WORDS)}</tag>\n`;
    rec += `    <notes>${pick(WORDS)} &lt;b&gt; &#233;&#x263A; ${pick(CITIES)}</notes>\n    <flags/>\n`;
    if (r() < 0.3) rec += `    <comment><![CDATA[raw <cdata> & ${i}]]></comment>\n`;
    rec += '  </record>\n';
    parts.push(rec);
    size += Buffer.byteLength(rec);
  }
  parts.push('</records>\n');
  return Buffer.from(parts.join(''), 'utf8');
}

export interface ProcessRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the converter's container entrypoint (dist/main.js) as a child process with `env` on top of
 * PATH and TMPDIR. `onStderr` sees all stderr so far and the child, to inject a fault mid-run.
 */
export function runConverterMain(
  env: Record<string, string>,
  onStderr?: (text: string, child: ChildProcess) => void,
  timeoutMs = 110_000,
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const [node, ...flags] = imageNode('converter');
    const child = spawn(node, [...flags, MAIN], {
      env: { PATH: process.env.PATH!, TMPDIR: os.tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
