// images stack: builds both images with the docker provider, pushes them under content-derived tags,
// exports references with digests; no registry credential ever enters Terraform.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contextHash } from '../../stacks/images';
import { makeImagesDir, synthesize } from './synth';

describe('images', () => {
  const imagesDir = makeImagesDir();
  const { stacks, infra } = synthesize({}, imagesDir);
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

  test('THEN each image is built from its folder for the task architecture and tagged by content', () => {
    for (const dir of ['sftp-lister', 'converter']) {
      const image = images.resources('docker_image')[`image-${dir}`];
      const hash = contextHash(path.join(imagesDir, dir));
      expect(image.build).toMatchObject({ context: path.join(imagesDir, dir), dockerfile: 'Dockerfile', platform: 'linux/amd64' });
      expect(image.name).toMatch(new RegExp(`^\\$\\{data\\.terraform_remote_state\\.cross-stack-reference-input-cluster\\.outputs\\.[^}]*repo-${dir}repository_url\\}:src-${hash.slice(0, 16)}$`));
      expect(image.triggers).toEqual({ source_hash: hash });
    }
  });

  test('THEN each image is pushed, kept remotely (immutable tags) and exported as repo:tag@digest', () => {
    for (const dir of ['sftp-lister', 'converter']) {
      expect(images.resources('docker_registry_image')[`push-${dir}`]).toMatchObject({
        name: `\${docker_image.image-${dir}.name}`,
        keep_remotely: true,
      });
      const output = images.json.output?.[`image_${dir.replace('-', '_')}`].value as string;
      expect(output).toMatch(new RegExp(`:src-[0-9a-f]{16}@\\$\\{docker_registry_image\\.push-${dir}\\.sha256_digest\\}$`));
    }
    expect(infra.images.tags.converter).toMatch(/^src-[0-9a-f]{16}$/);
  });

  test('GIVEN ARM64 WHEN synthesized THEN images are built for linux/arm64', () => {
    const arm = synthesize({ env: { PIPELINE_CPU_ARCHITECTURE: 'ARM64' } }, imagesDir);
    expect(arm.stacks.images.resources('docker_image')['image-converter'].build.platform).toBe('linux/arm64');
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
    const first = synthesize({}, imagesDir).stacks.images.json.output?.image_converter.value;
    fs.appendFileSync(path.join(imagesDir, 'converter', 'Dockerfile'), 'USER node\n');
    const second = synthesize({}, imagesDir).stacks.images.json.output?.image_converter.value;
    const lister = (d: string) => synthesize({}, d).stacks.images.json.output?.image_sftp_lister.value;
    expect(second).not.toBe(first);
    expect(lister(imagesDir)).toBe(lister(imagesDir));
  });

  test('GIVEN a build context without a Dockerfile WHEN synthesizing THEN it fails naming the folder', () => {
    const imagesDir = makeImagesDir();
    fs.rmSync(path.join(imagesDir, 'sftp-lister', 'Dockerfile'));
    expect(() => synthesize({}, imagesDir)).toThrow(`images stack: no Dockerfile in build context ${path.join(imagesDir, 'sftp-lister')}`);
  });
});
