// images stack: builds both images with the docker provider, pushes them under content-derived tags,
// exports references with digests; no registry credential ever enters Terraform.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contextHash, pinnedBaseImage } from '../../stacks/images';
import { repoRoot } from '../../stacks/paths';
import { makeImagesDir, synthesize, TEST_BASE_IMAGE } from './synth';

describe('images', () => {
  const imagesDir = makeImagesDir();
  const { stacks } = synthesize({}, imagesDir);
  const images = stacks.images;

  test('GIVEN the app WHEN synthesized THEN images is the only stack with the docker provider', () => {
    expect(Object.keys(images.json.provider ?? {}).sort()).toEqual(['aws', 'docker']);
    for (const name of ['network', 'sftp', 'cluster'] as const) {
      expect(Object.keys(stacks[name].json.provider ?? {})).toEqual(['aws']);
    }
  });

  test('THEN registry auth comes from the docker config file, never from a token in state', () => {
    expect(images.json.provider?.docker[0].registry_auth).toEqual([
      {
        address: '${data.aws_caller_identity.account.account_id}.dkr.ecr.us-east-1.amazonaws.com',
        config_file: '${pathexpand("~/.docker/config.json")}',
      },
    ]);
    expect(images.json.data?.aws_ecr_authorization_token).toBeUndefined();
    expect(JSON.stringify(images.json)).not.toMatch(/"password"|"username"/);
  });

  // Tag: content hash, platform, then the id of a terraform_data replaced with either (see stacks/images.ts).
  const tagOf = (dir: string, hash: string, arch: string) => `src-${hash.slice(0, 16)}-${arch}-\${terraform_data.build-${dir}.id}`;

  test('THEN each image is built from its folder for the task platform, tagged and triggered by content AND platform', () => {
    for (const dir of ['sftp-lister', 'converter']) {
      const image = images.resources('docker_image')[`image-${dir}`];
      const hash = contextHash(path.join(imagesDir, dir));
      expect(image.build).toMatchObject({ context: path.join(imagesDir, dir), dockerfile: 'Dockerfile', platform: 'linux/amd64' });
      expect(image.platform).toBe('linux/amd64');
      expect(image.name).toMatch(/^\$\{data\.terraform_remote_state\.cross-stack-reference-input-cluster\.outputs\.[^}]*repository_url\}:/);
      expect(image.name.endsWith(`:${tagOf(dir, hash, 'amd64')}`)).toBe(true);
      expect(image.triggers).toEqual({ source_hash: hash, platform: 'linux/amd64' });
      expect(images.resources('docker_registry_image')[`push-${dir}`].triggers).toEqual({ source_hash: hash, platform: 'linux/amd64' });
    }
  });

  test('THEN a build id is replaced exactly when the content or the platform changes, and is part of the tag', () => {
    // After lost images-stack state the build id is new, so the rebuilt image gets a new tag: ECR rejects
    // any push (even of the same digest) under an existing IMMUTABLE tag.
    for (const dir of ['sftp-lister', 'converter']) {
      const hash = contextHash(path.join(imagesDir, dir));
      expect(images.json.resource?.terraform_data?.[`build-${dir}`]).toMatchObject({ triggers_replace: { source_hash: hash, platform: 'linux/amd64' } });
    }
  });

  test('THEN each image is pushed, kept remotely (immutable tags) and exported as repo:tag@digest', () => {
    for (const dir of ['sftp-lister', 'converter']) {
      expect(images.resources('docker_registry_image')[`push-${dir}`]).toMatchObject({
        name: `\${docker_image.image-${dir}.name}`,
        keep_remotely: true,
      });
      const hash = contextHash(path.join(imagesDir, dir));
      const output = images.json.output?.[`image_${dir.replace('-', '_')}`].value as string;
      expect(output.endsWith(`:${tagOf(dir, hash, 'amd64')}@\${docker_registry_image.push-${dir}.sha256_digest}`)).toBe(true);
    }
  });

  test('GIVEN ARM64 WHEN synthesized THEN images are built for linux/arm64 under another tag, with other triggers', () => {
    const arm = synthesize({ env: { PIPELINE_CPU_ARCHITECTURE: 'ARM64' } }, imagesDir).stacks.images;
    const hash = contextHash(path.join(imagesDir, 'converter'));
    const image = arm.resources('docker_image')['image-converter'];
    expect(image.build.platform).toBe('linux/arm64');
    expect(image.platform).toBe('linux/arm64');
    expect(image.name.endsWith(`:${tagOf('converter', hash, 'arm64')}`)).toBe(true);
    expect(image.triggers).toEqual({ source_hash: hash, platform: 'linux/arm64' });
    expect(arm.json.resource?.terraform_data?.['build-converter']).toMatchObject({ triggers_replace: { source_hash: hash, platform: 'linux/arm64' } });
    expect(arm.json.output?.image_converter.value).not.toBe(images.json.output?.image_converter.value);
  });
});

describe('content-derived tag', () => {
  test('GIVEN a build context WHEN a source file changes THEN the tag changes; local installs and build output do not count', () => {
    const dir = path.join(makeImagesDir(), 'converter');
    const before = contextHash(dir);
    expect(contextHash(dir)).toBe(before);

    fs.mkdirSync(path.join(dir, 'node_modules', 'x'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'node_modules', 'x', 'index.js'), 'local install');
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.writeFileSync(path.join(dir, 'dist', 'cli.js'), 'build output');
    expect(contextHash(dir)).toBe(before);

    fs.appendFileSync(path.join(dir, 'src', 'index.js'), '// changed\n');
    const afterEdit = contextHash(dir);
    expect(afterEdit).not.toBe(before);

    // A rename with identical content is a different context too.
    fs.renameSync(path.join(dir, 'src', 'index.js'), path.join(dir, 'src', 'main.js'));
    expect(contextHash(dir)).not.toBe(afterEdit);
  });

  test('GIVEN the tag changes WHEN synthesized again THEN the exported image reference changes with it', () => {
    const imagesDir = makeImagesDir();
    const outputs = () => synthesize({}, imagesDir).stacks.images.json.output!;
    const before = outputs();
    fs.appendFileSync(path.join(imagesDir, 'converter', 'Dockerfile'), 'USER node\n');
    const after = outputs();
    expect(after.image_converter.value).not.toBe(before.image_converter.value);
    // Only the changed image's reference moves: the lister's, synthesized before and after, is the same.
    expect(after.image_sftp_lister.value).toBe(before.image_sftp_lister.value);
    expect(after.image_sftp_lister.value).toMatch(/:src-[0-9a-f]{16}-amd64-/);
  });

  test('GIVEN the Dockerfile pins BASE_IMAGE by digest WHEN synthesized THEN the build passes exactly that image', () => {
    const images = synthesize({}, makeImagesDir()).stacks.images;
    for (const dir of ['sftp-lister', 'converter']) {
      expect(images.resources('docker_image')[`image-${dir}`].build.build_args).toEqual({ BASE_IMAGE: TEST_BASE_IMAGE });
    }
  });

  test("GIVEN the repository's own Dockerfiles WHEN read THEN their base image is pinned by digest", () => {
    for (const dir of ['sftp-lister', 'converter']) {
      expect(pinnedBaseImage(path.join(repoRoot(), 'images', dir, 'Dockerfile'))).toMatch(/^node:[\w.-]+@sha256:[0-9a-f]{64}$/);
    }
  });

  test.each([
    ['a floating base tag', 'ARG BASE_IMAGE=node:20-bookworm-slim\nFROM ${BASE_IMAGE}\n', /BASE_IMAGE "node:20-bookworm-slim" is not pinned by digest/],
    ['no BASE_IMAGE default', 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n', /has no "ARG BASE_IMAGE=<image>@sha256:<digest>" default/],
    [
      'a second, unpinned FROM',
      `ARG BASE_IMAGE=${TEST_BASE_IMAGE}\nFROM \${BASE_IMAGE} AS build\nFROM debian:bookworm\nCOPY --from=build /a /a\n`,
      /"FROM debian:bookworm" is neither \$\{BASE_IMAGE\}, an earlier stage nor pinned by digest/,
    ],
  ])('GIVEN a Dockerfile with %s WHEN synthesizing THEN it fails naming the Dockerfile', (_name, dockerfile, message) => {
    const imagesDir = makeImagesDir();
    const file = path.join(imagesDir, 'converter', 'Dockerfile');
    fs.writeFileSync(file, dockerfile);
    expect(() => synthesize({}, imagesDir)).toThrow(message);
    expect(() => synthesize({}, imagesDir)).toThrow(`images stack: ${file}`);
  });

  test('GIVEN stages built on earlier stages WHEN synthesizing THEN they are accepted', () => {
    const imagesDir = makeImagesDir();
    fs.writeFileSync(
      path.join(imagesDir, 'converter', 'Dockerfile'),
      `ARG BASE_IMAGE=${TEST_BASE_IMAGE}\nFROM \${BASE_IMAGE} AS build\nFROM build AS test\nFROM $BASE_IMAGE\n`,
    );
    expect(() => synthesize({}, imagesDir)).not.toThrow();
  });

  test('GIVEN a build context without a Dockerfile WHEN synthesizing THEN it fails naming the folder', () => {
    const imagesDir = makeImagesDir();
    fs.rmSync(path.join(imagesDir, 'sftp-lister', 'Dockerfile'));
    expect(() => synthesize({}, imagesDir)).toThrow(`images stack: no Dockerfile in build context ${path.join(imagesDir, 'sftp-lister')}`);
  });
});
