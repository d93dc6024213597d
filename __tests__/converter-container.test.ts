// GIVEN the converter image built offline with buildah (multi-stage Dockerfile, BASE_IMAGE build arg)
// WHEN run like ECS runs it (read-only root, temp volume, non-root user) THEN the CLI converts corpus
// files byte-identically and the entrypoint converts an S3 object, spilling to the mounted TMPDIR.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildImage, imageConfig, runInImage } from './support/container';
import { CONVERTER_DIR, CORPUS_DIR, corpusCases } from './support/converter-records';
import { S3Server, startS3 } from './support/s3rver';

const TAG = 'localhost/xml2json-converter:test';
let s3: S3Server;
const dirs: string[] = [];

function volume(mode: number): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'xml2json-vol-'));
  fs.chmodSync(d, mode);
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  [s3] = await Promise.all([startS3(['in']), buildImage(CONVERTER_DIR, TAG)]);
}, 600_000);
afterAll(async () => {
  await s3?.dispose();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('the image runs node /app/dist/main.js in /app as a non-root user', () => {
  const cfg = imageConfig(TAG);
  expect(cfg.entrypoint).toEqual(['node', '/app/dist/main.js']);
  expect(cfg.workingDir).toBe('/app');
  expect(cfg.user).toBe('10001:10001');
  expect(cfg.env.TMPDIR).toBe('/tmp');
  expect(cfg.env.HOME).toBe('/tmp');
});

test('CLI inside the image, read-only root: corpus files byte-identical, malformed ones rejected', async () => {
  const tmp = volume(0o1777);
  const out = path.join(tmp, 'out');
  fs.mkdirSync(out, { mode: 0o777 });
  fs.chmodSync(out, 0o777);
  const cases = [...corpusCases('lab'), ...corpusCases('beyond'), ...corpusCases('valid').slice(0, 10)];
  const bad = corpusCases('invalid').find((c) => c.name.endsWith('two_roots.xml'))!;
  // Mount points must exist in the read-only image: /mnt (corpus) and /tmp (the temp volume).
  const inImage = (c: { xml: string }) => '/mnt/' + path.relative(CORPUS_DIR, c.xml);
  const r = await runInImage(TAG, {
    readOnlyRoot: true,
    entrypoint: ['node', '/app/dist/cli.js'],
    args: ['--out-dir', '/tmp/out', ...cases.map(inImage), inImage(bad)],
    volumes: [
      { host: CORPUS_DIR, container: '/mnt', readOnly: true },
      { host: tmp, container: '/tmp' },
    ],
  });
  expect(r.code).toBe(65);
  expect(r.stderr.trim()).toMatch(/^\/mnt\/invalid\/two_roots\.xml:\d+:\d+: \S/);
  for (const c of cases) {
    expect(fs.readFileSync(path.join(out, path.basename(c.xml, '.xml') + '.json'), 'utf8')).toBe(fs.readFileSync(c.expected!, 'utf8'));
  }
  expect(fs.existsSync(path.join(out, 'two_roots.json'))).toBe(false);
  const owners = new Set(fs.readdirSync(out).map((f) => fs.statSync(path.join(out, f)).uid));
  expect([...owners]).toEqual([10001]);
});

test('entrypoint inside the image against S3: spills to the mounted /tmp, lab contract output', async () => {
  // Non-contiguous repeats force buffering; a tiny threshold forces those buffers onto disk.
  const big = 'v'.repeat(20_000);
  const xml = `<r><a>${big}</a><b>1</b><a>${big}</a><b>2</b><c/></r>`;
  await s3.put('in', 'c/doc.xml', xml);
  const tmp = volume(0o1777);
  const r = await runInImage(TAG, {
    readOnlyRoot: true,
    env: { ...s3.env, BUCKET: 'in', S3PATH: 'c/doc.xml', SPILL_THRESHOLD: '1000' },
    volumes: [{ host: tmp, container: '/tmp' }],
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'converted', spilledBytes: expect.any(Number) });
  expect(JSON.parse(r.stdout).spilledBytes).toBeGreaterThan(40_000);
  expect(JSON.parse((await s3.get('in', 'c/doc.xml.json')).toString())).toEqual({ r: { a: [big, big], b: ['1', '2'], c: null } });
  expect(fs.readdirSync(tmp)).toEqual([]); // spill files are unlinked
});
