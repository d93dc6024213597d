// GIVEN an image built offline on the local base WHEN run like ECS runs it THEN user, workdir,
// read-only root and mounted temp volume behave as they would on Fargate.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildImage, runInImage } from './support/container';

const TAG = 'localhost/pipeline-probe:test';

beforeAll(async () => {
  await buildImage(path.join(__dirname, 'fixtures/probe-image'), TAG);
}, 600_000);

test('read-only root with a mounted temp volume, as the image user', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-tmp-'));
  fs.chmodSync(tmp, 0o1777);
  const res = await runInImage(TAG, { readOnlyRoot: true, volumes: [{ host: tmp, container: '/tmp' }], args: ['a b'], env: { PROBE: 'p' } });
  expect(res.stderr).toBe('');
  expect(JSON.parse(res.stdout)).toEqual({ uid: 10001, cwd: '/app', root: 'EROFS', tmp: true, args: ['a b'], env: 'p' });
});

test('buildah run without read-only root: image filesystem writable by its owner only', async () => {
  const res = await runInImage(TAG, { args: [] });
  expect(res.code).toBe(0);
  const out = JSON.parse(res.stdout);
  expect(out.uid).toBe(10001);
  expect(out.root).toBe('EACCES');
});
