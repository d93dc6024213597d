// GIVEN the converter's local CLI (images/converter/dist/cli.js, root script `npm run xml2json`)
// WHEN run on files THEN it writes DIR/<name>.json or stdout, exits 0 / 65 (malformed) / 64 (usage) /
// 74 (I/O), prints one FILE:LINE:COLUMN line per bad file and never leaves a partial output file.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, REPO_ROOT, corpusCases } from '../tools/servers/converter-records';

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const HOSTILE_ACCEPTED = ['invalid/billion_laughs.xml', 'invalid/xxe_file_passwd.xml', 'invalid/xxe_parameter_entity.xml'];
const valid = corpusCases('valid');
const invalid = corpusCases('invalid').filter((c) => !HOSTILE_ACCEPTED.includes(c.name));
let tmp: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xml2json-cli-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('one file without --out-dir: the JSON on stdout, exit 0', () => {
  const c = corpusCases('lab')[0];
  const r = cli([c.xml]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(fs.readFileSync(c.expected!, 'utf8'));
  expect(r.stderr).toBe('');
});

test('the root script `npm run --silent xml2json --` runs the same CLI', () => {
  const c = corpusCases('beyond').find((x) => x.name.includes('shift_jis'))!;
  const r = spawnSync('npm', ['run', '--silent', 'xml2json', '--', c.xml], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(fs.readFileSync(c.expected!, 'utf8'));
});

test('a batch with --out-dir: DIR/<name>.json for every valid file, exit 0', () => {
  const r = cli(['--out-dir', tmp, ...valid.map((c) => c.xml)]);
  expect(r.code).toBe(0);
  for (const c of valid) {
    const out = path.join(tmp, path.basename(c.xml, '.xml') + '.json');
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(c.expected!, 'utf8'));
  }
  expect(fs.readdirSync(tmp)).toHaveLength(valid.length);
});

describe.each(invalid.map((c) => [c.name, c] as const))('%s', (_n, c) => {
  test('exit 65, exactly one FILE:LINE:COLUMN: message line, no output file', () => {
    const r = cli(['--out-dir', tmp, c.xml]);
    expect(r.code).toBe(65);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0].startsWith(`${c.xml}:`)).toBe(true);
    expect(lines[0].slice(c.xml.length)).toMatch(/^:\d+:\d+: \S/);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});

test('a mixed batch converts the good files, reports each bad one, exits 65', () => {
  const files = [valid[0].xml, invalid[0].xml, valid[1].xml, invalid[1].xml];
  const r = cli(['--out-dir', tmp, '--format', 'compact', ...files]);
  expect(r.code).toBe(65);
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines.map((l) => l.slice(0, l.indexOf('.xml:') + 4))).toEqual([invalid[0].xml, invalid[1].xml]);
  expect(fs.readdirSync(tmp).sort()).toEqual([valid[0], valid[1]].map((c) => path.basename(c.xml, '.xml') + '.json').sort());
  for (const c of [valid[0], valid[1]]) {
    const out = fs.readFileSync(path.join(tmp, path.basename(c.xml, '.xml') + '.json'), 'utf8');
    expect(JSON.stringify(JSON.parse(out))).toBe(JSON.stringify(JSON.parse(fs.readFileSync(c.expected!, 'utf8'))));
  }
});

test('jsonl: one line per record; --verbose adds a JSON log line per file on stderr', () => {
  const file = path.join(tmp, 'recs.xml');
  fs.writeFileSync(file, '<rs><r id="1"><v>a</v></r><r id="2"/><x>skip</x><r>t</r></rs>');
  const r = cli(['--format', 'jsonl', '--record-path', '/rs/r', '--verbose', file]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('{"@id":"1","v":"a"}\n{"@id":"2"}\n"t"\n');
  const log = JSON.parse(r.stderr.trim());
  expect(log).toMatchObject({ source: file, outcome: 'converted', records: 3, bytesIn: fs.statSync(file).size, bytesOut: r.stdout.length });
  expect(typeof log.mbPerSec).toBe('number');
});

test('usage errors exit 64 with the usage line; a missing file exits 74', () => {
  for (const args of [[], ['--format', 'yaml', 'x.xml'], ['a.xml', 'b.xml'], ['--format', 'jsonl', 'a.xml'], ['--bogus', 'a.xml']]) {
    const r = cli(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage: xml2json');
  }
  const missing = path.join(tmp, 'nope.xml');
  const r = cli(['--out-dir', tmp, missing]);
  expect(r.code).toBe(74);
  expect(r.stderr).toContain(missing);
  expect(fs.readdirSync(tmp)).toEqual([]);
});

test('limits come from the environment (MAX_DEPTH) and bad values are usage errors', () => {
  const c = corpusCases('valid').find((x) => x.name.includes('deep_nesting_500'))!;
  const r = cli([c.xml], { MAX_DEPTH: '100' });
  expect(r.code).toBe(65);
  expect(r.stderr).toMatch(/:\d+:\d+: element nesting deeper than the limit of 100 \(MAX_DEPTH\)/);
  expect(r.stdout).toBe('');
  expect(cli([c.xml], { MAX_DEPTH: 'lots' }).code).toBe(64);
});

describe('everyday use (issue 12)', () => {
  test('`-` reads stdin; malformed stdin is reported as <stdin>:LINE:COLUMN', () => {
    const ok = spawnSync(process.execPath, [CLI, '-'], { input: '<r a="1">x</r>', encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('{\n    "r": {\n        "@a": "1",\n        "#text": "x"\n    }\n}');
    const bad = spawnSync(process.execPath, [CLI, '-'], { input: '<r>\n<a></b></r>', encoding: 'utf8' });
    expect(bad.status).toBe(65);
    expect(bad.stderr).toMatch(/^<stdin>:2:\d+: \S.*\n$/);
    const out = spawnSync(process.execPath, [CLI, '--out-dir', tmp, '-'], { input: '<r/>', encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'stdin.json'), 'utf8')).toBe('{\n    "r": null\n}');
  });

  test('--help prints the usage on stdout and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = cli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('usage: xml2json');
      expect(r.stderr).toBe('');
    }
  });

  test('two inputs with the same base name in one --out-dir run: a usage error before anything is written', () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(a, 'same.xml'), '<a/>');
    fs.writeFileSync(path.join(b, 'same.xml'), '<b/>');
    fs.writeFileSync(path.join(tmp, 'first.xml'), '<f/>');
    const outDir = path.join(tmp, 'out');
    const r = cli(['--out-dir', outDir, path.join(tmp, 'first.xml'), path.join(a, 'same.xml'), path.join(b, 'same.xml')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('would both write same.json');
    expect(fs.existsSync(outDir)).toBe(false);
  });

  test("under `npm run xml2json`, relative inputs and --out-dir resolve from the caller's directory", () => {
    fs.writeFileSync(path.join(tmp, 'rel.xml'), '<rel>1</rel>');
    const r = spawnSync('npm', ['--prefix', REPO_ROOT, 'run', '--silent', 'xml2json', '--', '--out-dir', 'outrel', 'rel.xml'], { cwd: tmp, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'outrel', 'rel.json'), 'utf8')).toBe('{\n    "rel": "1"\n}');
    const missing = spawnSync('npm', ['--prefix', REPO_ROOT, 'run', '--silent', 'xml2json', '--', 'nope.xml'], { cwd: tmp, encoding: 'utf8' });
    expect(missing.status).toBe(74);
    expect(missing.stderr).toContain('nope.xml');
  });
});
