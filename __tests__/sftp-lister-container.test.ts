// The SFTP ingest IMAGE (images/sftp-lister/Dockerfile), built with buildah on the local base image
// and run as Fargate runs the ingest stack's synthesized task definition: its non-root user, read-only
// root filesystem, /tmp on a new task volume (root-owned 0755 unless the image declares a VOLUME
// there); host network to the REAL test sshd and the S3 stand-in.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildImage, disposeVolumes, FargateTask, imageConfig, runTask, synthesizedTask } from '../tools/servers/container';
import { imageNodeFlags } from '../tools/servers/image-runtime';
import type { S3Server } from '../tools/servers/s3';
import type { SftpServer } from '../tools/servers/sshd';
import { age, ListerServers, listerEnv, startListerServers } from '../tools/servers/lister-harness';

const TAG = 'localhost/sftp-lister:test';
const BUCKET = 'ingest';
let sftp: SftpServer;
let s3: S3Server;
let servers: ListerServers | undefined;
let task: FargateTask;

beforeAll(async () => {
  task = synthesizedTask('ingest');
  [servers] = await Promise.all([startListerServers(BUCKET), buildImage(path.resolve(__dirname, '../images/sftp-lister'), TAG)]);
  ({ sftp, s3 } = servers);
}, 900_000);

afterAll(async () => {
  await servers?.stop();
  disposeVolumes();
});

test('GIVEN the image WHEN inspected THEN it runs node dist/main.js from /app as a non-root user', () => {
  const cfg = imageConfig(TAG);
  expect(cfg.entrypoint).toEqual(['node', '--max-semi-space-size=8', '/app/dist/main.js']);
  // The lister's tests outside the container run it with the flags the built image has.
  expect(imageNodeFlags('sftp-lister')).toEqual(cfg.entrypoint.slice(1, -1));
  expect(cfg.workingDir).toBe('/app');
  expect(cfg.user).not.toBe('');
  expect(cfg.user.split(':')[0]).not.toMatch(/^(0|root)$/);
  expect(task.container.user).toBe(cfg.user);
});

test('GIVEN the Dockerfile THEN its base is pinned by digest (the tests build on their offline stand-in instead)', () => {
  const dockerfile = fs.readFileSync(path.resolve(__dirname, '../images/sftp-lister/Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/^ARG BASE_IMAGE=node:24-bookworm-slim@sha256:[0-9a-f]{64}$/m);
});

test('GIVEN the task definition WHEN the container starts THEN it can make temporary files on its /tmp volume (issue 10 defect 2)', async () => {
  const r = await runTask(TAG, task, { entrypoint: ['node', '-e', 'console.log(require("fs").mkdtempSync(require("os").tmpdir() + "/t-"))'] });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^\/tmp\/t-\w+\n$/);
  expect(fs.statSync(path.join(r.volumes['/tmp'], path.basename(r.stdout.trim()))).uid).toBe(10001);
  // Writable because the image declares the task's mount point a VOLUME owned by its user.
  expect((task.container.mountPoints ?? []).map((m) => m.containerPath)).toEqual(['/tmp']);
  expect(imageConfig(TAG).volumes).toEqual(['/tmp']);
});

test('GIVEN files on SFTP WHEN the container runs with a read-only root THEN it ingests them and writes the manifest; a second run ingests none', async () => {
  for (const [name, body] of [
    ['a.xml', '<a/>'],
    ['b.xml', '<b>2</b>'],
  ]) {
    const p = path.join(sftp.root, 'inbox', name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, body);
    age(p, 3600);
  }
  // The image's own PATH and HOME, as in ECS; everything else as the task definition would set it.
  const env = listerEnv(sftp, s3, BUCKET, {
    PATH: undefined,
    HOME: undefined,
    SFTP_REMOTE_DIR: 'inbox',
    DEST_PREFIX: 'landing/',
    MANIFEST_KEY: 'manifests/run-1.json',
  });

  const r = await runTask(TAG, task, { env });
  expect(r.stderr).not.toMatch(/EROFS|EACCES|PRIVATE KEY/);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ listed: 2, ingested: 2, failed: 0, manifestKey: 'manifests/run-1.json' });
  expect(await s3.keys(BUCKET, 'landing/')).toEqual(['landing/a.xml', 'landing/b.xml']);
  expect((await s3.get(BUCKET, 'landing/b.xml')).toString()).toBe('<b>2</b>');
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/run-1.json')).toString()).sort()).toEqual(['landing/a.xml', 'landing/b.xml']);

  const again = await runTask(TAG, task, { env: { ...env, MANIFEST_KEY: 'manifests/run-2.json' } });
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ alreadyPresent: 2, ingested: 0 });
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/run-2.json')).toString())).toEqual([]);
});

test('GIVEN a wrong host-key fingerprint WHEN the container runs THEN it refuses (exit 3) and writes nothing', async () => {
  const env = listerEnv(sftp, s3, BUCKET, {
    PATH: undefined,
    HOME: undefined,
    SFTP_REMOTE_DIR: 'inbox',
    DEST_PREFIX: 'refused/',
    SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'x'.repeat(43)}`,
  });
  const r = await runTask(TAG, task, { env });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain('none of which is in SFTP_HOST_KEY_FINGERPRINTS; refusing to connect');
  expect(await s3.keys(BUCKET, 'refused/')).toEqual([]);
});
