// GIVEN the converter image built offline with buildah (multi-stage Dockerfile, BASE_IMAGE build arg)
// WHEN run as Fargate runs the batch stack's synthesized task definition (its user, read-only root,
// its /tmp mount point on a new task volume: root-owned 0755 unless the image declares it a VOLUME)
// THEN the CLI converts corpus files byte-identically and the entrypoint converts an S3 object,
// spilling values over the threshold to the task volume.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildImage, disposeVolumes, FargateTask, imageConfig, runTask, synthesizedTask } from '../tools/servers/container';
import { CONVERTER_DIR, CORPUS_DIR, corpusCases } from '../tools/servers/converter-records';
import { S3Server, startS3 } from '../tools/servers/s3';

const TAG = 'localhost/xml2json-converter:test';
let s3: S3Server;
let task: FargateTask;

beforeAll(async () => {
  task = synthesizedTask('batch');
  [s3] = await Promise.all([startS3(['in']), buildImage(CONVERTER_DIR, TAG)]);
}, 900_000);
afterAll(async () => {
  await s3?.dispose();
  disposeVolumes();
});

test('the image runs node /app/dist/main.js (with 8 MiB semi-spaces: its memory bound) in /app as the non-root user the task definition names', () => {
  const cfg = imageConfig(TAG);
  expect(cfg.entrypoint).toEqual(['node', '--max-semi-space-size=8', '/app/dist/main.js']);
  expect(cfg.workingDir).toBe('/app');
  expect(cfg.user).toBe('10001:10001');
  expect(task.container.user).toBe(cfg.user);
  expect(task.container.readonlyRootFilesystem).toBe(true);
  expect(cfg.env.TMPDIR).toBe('/tmp');
  expect(cfg.env.HOME).toBe('/tmp');
});

test('the Dockerfile pins its base by digest; the tests build on their offline stand-in instead', () => {
  const dockerfile = fs.readFileSync(path.join(CONVERTER_DIR, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/^ARG BASE_IMAGE=node:24-bookworm-slim@sha256:[0-9a-f]{64}$/m);
});

test('every task volume mount point is a VOLUME of the image, owned by its user', async () => {
  const r = await runTask(TAG, task, {
    entrypoint: ['node', '-e', 'const s = require("fs").statSync(process.env.TMPDIR); console.log(JSON.stringify([s.uid, s.gid]))'],
  });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual([10001, 10001]);
  const mountPaths = (task.container.mountPoints ?? []).map((m) => m.containerPath);
  expect(mountPaths).toContain('/tmp');
  expect(imageConfig(TAG).volumes).toEqual(expect.arrayContaining(mountPaths));
});

test('CLI inside the image: corpus files byte-identical in the task volume, malformed ones rejected', async () => {
  const cases = [...corpusCases('lab'), ...corpusCases('beyond'), ...corpusCases('valid').slice(0, 10)];
  const bad = corpusCases('invalid').find((c) => c.name.endsWith('two_roots.xml'))!;
  const inImage = (c: { xml: string }) => '/mnt/' + path.relative(CORPUS_DIR, c.xml);
  const r = await runTask(TAG, task, {
    entrypoint: ['node', '/app/dist/cli.js'],
    args: ['--out-dir', '/tmp/out', ...cases.map(inImage), inImage(bad)],
    hostMounts: [{ host: CORPUS_DIR, container: '/mnt', readOnly: true }],
  });
  expect(r.code).toBe(65);
  expect(r.stderr.trim()).toMatch(/^\/mnt\/invalid\/two_roots\.xml:\d+:\d+: \S/);
  const out = path.join(r.volumes['/tmp'], 'out');
  for (const c of cases) {
    expect(fs.readFileSync(path.join(out, path.basename(c.xml, '.xml') + '.json'), 'utf8')).toBe(fs.readFileSync(c.expected!, 'utf8'));
  }
  expect(fs.existsSync(path.join(out, 'two_roots.json'))).toBe(false);
  const owners = new Set(fs.readdirSync(out).map((f) => fs.statSync(path.join(out, f)).uid));
  expect([...owners]).toEqual([10001]);
});

test('entrypoint inside the image against S3: a value over the spill threshold spills to the task volume (issue 10 defect 2)', async () => {
  // Non-contiguous repeats force buffering; a tiny threshold forces those buffers onto disk.
  const big = 'v'.repeat(20_000);
  const xml = `<r><a>${big}</a><b>1</b><a>${big}</a><b>2</b><c/></r>`;
  await s3.put('in', 'c/doc.xml', xml);
  const r = await runTask(TAG, task, { env: { ...s3.env, BUCKET: 'in', S3PATH: 'c/doc.xml', SPILL_THRESHOLD: '1000' } });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const [keyLine, taskLine] = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(keyLine).toMatchObject({ outcome: 'converted', spilledBytes: expect.any(Number) });
  expect(keyLine.spilledBytes).toBeGreaterThanOrEqual(40_000); // both 20,000-character texts are on disk
  expect(taskLine).toMatchObject({ outcome: 'task', exitCode: 0 });
  expect(JSON.parse((await s3.get('in', 'c/doc.xml.json')).toString())).toEqual({ r: { a: [big, big], b: ['1', '2'], c: null } });
  expect(fs.readdirSync(r.volumes['/tmp'])).toEqual([]); // spill files are unlinked
});
