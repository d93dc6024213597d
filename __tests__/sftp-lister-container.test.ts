// The SFTP ingest IMAGE (images/sftp-lister/Dockerfile), built with buildah on the local base image
// and run like ECS runs it: its own non-root user, read-only root filesystem, host network to the
// REAL test sshd and s3rver.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildImage, imageConfig, runInImage } from './support/container';
import type { S3Server } from './support/s3rver';
import type { SftpServer } from './support/sshd';
import { age, ListerServers, listerEnv, startListerServers } from './support/lister-harness';

const TAG = 'localhost/sftp-lister:test';
const BUCKET = 'ingest';
let sftp: SftpServer;
let s3: S3Server;
let servers: ListerServers | undefined;

beforeAll(async () => {
  [servers] = await Promise.all([startListerServers(BUCKET), buildImage(path.resolve(__dirname, '../images/sftp-lister'), TAG)]);
  ({ sftp, s3 } = servers);
}, 900_000);

afterAll(async () => {
  await servers?.stop();
});

test('GIVEN the image WHEN inspected THEN it runs node dist/main.js from /app as a non-root user', () => {
  const cfg = imageConfig(TAG);
  expect(cfg.entrypoint).toEqual(['node', '/app/dist/main.js']);
  expect(cfg.workingDir).toBe('/app');
  expect(cfg.user).not.toBe('');
  expect(cfg.user.split(':')[0]).not.toMatch(/^(0|root)$/);
});

test('GIVEN files on SFTP WHEN the container runs with a read-only root THEN it ingests them and writes the manifest; a second run ingests none', async () => {
  for (const [name, body] of [['a.xml', '<a/>'], ['b.xml', '<b>2</b>']]) {
    const p = path.join(sftp.root, 'inbox', name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, body);
    age(p, 3600);
  }
  // The image's own PATH and HOME, as in ECS; everything else as the task definition would set it.
  const env = listerEnv(sftp, s3, BUCKET, { PATH: undefined, HOME: undefined, SFTP_REMOTE_DIR: 'inbox', DEST_PREFIX: 'landing/', MANIFEST_KEY: 'manifests/run-1.json' });

  const r = await runInImage(TAG, { readOnlyRoot: true, env });
  expect(r.stderr).not.toMatch(/EROFS|EACCES|PRIVATE KEY/);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ listed: 2, ingested: 2, failed: 0, manifestKey: 'manifests/run-1.json' });
  expect(await s3.keys(BUCKET, 'landing/')).toEqual(['landing/a.xml', 'landing/b.xml']);
  expect((await s3.get(BUCKET, 'landing/b.xml')).toString()).toBe('<b>2</b>');
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/run-1.json')).toString()).sort()).toEqual(['landing/a.xml', 'landing/b.xml']);

  const again = await runInImage(TAG, { readOnlyRoot: true, env: { ...env, MANIFEST_KEY: 'manifests/run-2.json' } });
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
  const r = await runInImage(TAG, { readOnlyRoot: true, env });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain('not in SFTP_HOST_KEY_FINGERPRINTS');
  expect(await s3.keys(BUCKET, 'refused/')).toEqual([]);
});
