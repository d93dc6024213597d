// GIVEN an image built offline on the local base WHEN run as Fargate runs a task's container THEN the
// user, workdir, read-only root and task volumes behave as they would on Fargate: a volume is empty,
// root-owned and 0755 unless the image declares a VOLUME there, whose content, owner and mode it gets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildImage, disposeVolumes, FargateTask, fargateTask, runTask } from '../tools/servers/container';
import { BASE_NODE_VERSION } from '../tools/servers/image-runtime';

const TAG = 'localhost/pipeline-probe:test';

// As synthesized by fargateTaskDefinition (stacks/ingest.ts), plus a second volume at the image's VOLUME.
const taskDefinition = {
  container_definitions: JSON.stringify([
    {
      name: 'probe',
      user: '10001:10001',
      readonlyRootFilesystem: true,
      mountPoints: [
        { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
        { sourceVolume: 'data', containerPath: '/data/', readOnly: false },
      ],
      environment: [
        { name: 'PROBE', value: 'from-task' },
        { name: 'REF', value: '${aws_s3_bucket.x.bucket}' },
      ],
    },
  ]),
  volume: [{ name: 'tmp' }, { name: 'data' }],
};

beforeAll(async () => {
  await buildImage(path.join(__dirname, 'fixtures/probe-image'), TAG);
}, 900_000);
afterAll(disposeVolumes);

const withContainer = (task: FargateTask, change: Partial<FargateTask['container']>): FargateTask => ({ ...task, container: { ...task.container, ...change } });

test('read-only root; /tmp (no VOLUME) root-owned 0755 and empty; /data gets the image VOLUME content, owner and mode', async () => {
  const task = fargateTask(taskDefinition);
  const res = await runTask(TAG, task, { args: ['a b'] });
  expect(res.stderr).toBe('');
  expect(JSON.parse(res.stdout)).toEqual({
    uid: 10001,
    gid: 10001,
    cwd: '/app',
    root: 'EROFS',
    tmp: { uid: 0, gid: 0, mode: '755', entries: [], write: 'EACCES' },
    data: { uid: 10001, gid: 10001, mode: '700', entries: ['seed'], write: true },
    args: ['a b'],
    env: 'from-task',
  });
  // A copy: the task's writes land in its volume, never in the image.
  expect(fs.readFileSync(path.join(res.volumes['/data'], 'seed'), 'utf8')).toBe('seed\n');
  expect(Object.keys(res.volumes).sort()).toEqual(['/data', '/tmp']);
});

test('environment: the test overrides the task definition; writable root; a read-only mount point is read-only', async () => {
  const base = fargateTask(taskDefinition);
  const task = withContainer(base, {
    readonlyRootFilesystem: false,
    mountPoints: [
      { sourceVolume: 'tmp', containerPath: '/tmp' },
      { sourceVolume: 'data', containerPath: '/data', readOnly: true },
    ],
  });
  const res = await runTask(TAG, task, { env: { PROBE: 'from-test' } });
  expect(res.code).toBe(0);
  const out = JSON.parse(res.stdout);
  expect(out.root).toBe('EACCES'); // /app belongs to root: writable root, but not by this user
  expect(out.data).toMatchObject({ entries: ['seed'], write: 'EROFS' });
  expect(out.env).toBe('from-test');
});

test('the base runs the Node release of the base the Dockerfiles pin (its major), not the Node running the tests', async () => {
  const res = await runTask(TAG, fargateTask(taskDefinition), { entrypoint: ['node', '-p', 'process.version'] });
  expect(res.stderr).toBe('');
  expect(res.stdout).toBe(`v${BASE_NODE_VERSION}\n`);
  const runMajor = BASE_NODE_VERSION.split('.')[0];
  for (const image of ['converter', 'sftp-lister']) {
    const dockerfile = fs.readFileSync(path.join(__dirname, '..', 'images', image, 'Dockerfile'), 'utf8');
    const pinned = /^ARG BASE_IMAGE=node:(\d+)-bookworm-slim@sha256:[0-9a-f]{64}$/m.exec(dockerfile);
    expect([image, pinned?.[1]]).toEqual([image, runMajor]);
  }
});

test('never as root, and only what Fargate has: a defined bind volume', () => {
  const task = fargateTask(taskDefinition);
  expect(() => runTask(TAG, withContainer(task, { user: '0:0' }))).toThrow(/would run as root/);
  expect(() => runTask(TAG, withContainer(task, { user: 'root' }))).toThrow(/would run as root/);
  expect(() => runTask(TAG, { ...task, volumes: [{ name: 'tmp' }] })).toThrow(/mounts volume data, which the task does not define/);
  expect(() => runTask(TAG, { ...task, volumes: [{ name: 'tmp' }, { name: 'data', efsVolumeConfiguration: {} }] })).toThrow(/only Fargate bind volumes/);
  expect(() => fargateTask({ container_definitions: '[{"name":"a"},{"name":"b"}]' })).toThrow(/several, name one/);
});
