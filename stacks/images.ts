// images: the only stack with the docker provider. Builds images/sftp-lister and images/converter for
// the tasks' platform and pushes them to their ECR repositories, then exports
// `repo:tag@sha256:digest` so task definitions change (and roll) exactly when the code or the platform
// does.
//
// Tags: `src-<content hash>-<arch>-<build id>`. The content hash covers the whole build context,
// Dockerfile included, so the base image digest pinned there (ARG BASE_IMAGE) is part of it. The build
// id is a terraform_data replaced with the content hash or the platform, so it stays the same from one
// deploy to the next (nothing rolls) but is new after the images stack's state is lost: the rebuilt
// image, whose digest may differ (npm ci, timestamps), is pushed under a new tag. ECR refuses any push
// under an existing IMMUTABLE tag, even of the same digest
// (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html), and Terraform
// cannot ask ECR whether a tag exists without failing when it does not (aws_ecr_image errors), so
// reusing the pushed image is not an option.
//
// Registry login is NOT done through Terraform (an ECR token in a data source would sit in state):
// the provider reads ~/.docker/config.json, filled by `aws ecr get-login-password | docker login ...`
// or by the amazon-ecr-credential-helper (README, "Deploy").
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { Image } from '@cdktf/provider-docker/lib/image';
import { DockerProvider } from '@cdktf/provider-docker/lib/provider';
import { RegistryImage } from '@cdktf/provider-docker/lib/registry-image';
import { DataResource, Fn, TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { ClusterStack, IMAGES, ImageName } from './cluster';
import { repoRoot } from './paths';

/** Files that never belong in a build context's identity (local installs, build output, scratch). */
const IGNORED = new Set(['node_modules', 'dist', 'coverage', '.tmp', '.git', 'cdktf.out']);

export interface ImagesStackProps extends PipelineStackProps {
  readonly cluster: ClusterStack;
  /** Folder holding one build context per image (`sftp-lister/`, `converter/`). @default `<repo>/images` */
  readonly imagesDir?: string;
}

export class ImagesStack extends PipelineStack {
  /** `repositoryUrl:tag@sha256:...` per image: what task definitions must reference. */
  readonly imageRefs: Record<ImageName, string>;

  constructor(scope: Construct, id: string, props: ImagesStackProps) {
    super(scope, id, props);
    const imagesDir = props.imagesDir ?? path.join(repoRoot(), 'images');
    const { region, cpuArchitecture } = this.config;
    // The OCI platform of the Fargate runtime platform (the docker provider passes it to the daemon's
    // build as --platform, and pulls the base image for it).
    const arch = cpuArchitecture === 'ARM64' ? 'arm64' : 'amd64';
    const platform = `linux/${arch}`;

    const account = new DataAwsCallerIdentity(this, 'account');
    new DockerProvider(this, 'docker', {
      registryAuth: [
        {
          address: `${account.accountId}.dkr.ecr.${region}.amazonaws.com`,
          configFile: Fn.pathexpand('~/.docker/config.json'),
        },
      ],
    });

    const imageRefs = {} as Record<ImageName, string>;
    for (const [name, spec] of Object.entries(IMAGES) as [ImageName, (typeof IMAGES)[ImageName]][]) {
      const context = path.join(imagesDir, spec.dir);
      const hash = contextHash(context);
      // What must rebuild and re-push the image when it changes.
      const triggers = { source_hash: hash, platform };
      const build = new DataResource(this, `build-${spec.dir}`, { triggersReplace: triggers });
      // Passed explicitly (the Dockerfile's own default) so the synthesized build shows what it builds on.
      const baseImage = pinnedBaseImage(path.join(context, 'Dockerfile'));
      const tag = `src-${hash.slice(0, 16)}-${arch}-${build.id}`;
      const repositoryUrl = props.cluster.repositories[name].repositoryUrl;
      const image = new Image(this, `image-${spec.dir}`, {
        name: `${repositoryUrl}:${tag}`,
        platform,
        buildAttribute: {
          context,
          dockerfile: 'Dockerfile',
          platform,
          buildArgs: { BASE_IMAGE: baseImage },
          label: { 'org.opencontainers.image.revision': hash },
        },
        triggers,
      });
      // Tags are immutable in ECR: keep pushed images (the lifecycle policy prunes them), never overwrite.
      const pushed = new RegistryImage(this, `push-${spec.dir}`, {
        name: image.name,
        keepRemotely: true,
        triggers,
      });
      imageRefs[name] = `${repositoryUrl}:${tag}@${pushed.sha256Digest}`;
      new TerraformOutput(this, `image_${spec.dir.replace('-', '_')}`, { value: imageRefs[name] });
    }
    this.imageRefs = imageRefs;
  }
}

/**
 * The default of the Dockerfile's `ARG BASE_IMAGE`, which must be pinned by digest (a multi-platform
 * index digest serves every platform); every `FROM` must build on it or on an earlier stage. A floating
 * base tag would make each rebuild of the same source a different image.
 */
export function pinnedBaseImage(dockerfile: string): string {
  const text = fs.readFileSync(dockerfile, 'utf8');
  const base = /^\s*ARG\s+BASE_IMAGE=(\S+)\s*$/m.exec(text)?.[1];
  if (!base) throw new Error(`images stack: ${dockerfile} has no "ARG BASE_IMAGE=<image>@sha256:<digest>" default`);
  if (!/^[^@\s]+@sha256:[0-9a-f]{64}$/.test(base)) {
    throw new Error(
      `images stack: ${dockerfile}: BASE_IMAGE "${base}" is not pinned by digest (<image>@sha256:<64 hex digits>); a floating tag makes every rebuild a different image`,
    );
  }
  const stages = new Set<string>();
  for (const m of text.matchAll(/^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/gim)) {
    const from = m[1];
    if (!/^\$\{?BASE_IMAGE\}?$/.test(from) && !stages.has(from.toLowerCase()) && !/@sha256:[0-9a-f]{64}$/.test(from)) {
      throw new Error(`images stack: ${dockerfile}: "FROM ${from}" is neither \${BASE_IMAGE}, an earlier stage nor pinned by digest`);
    }
    if (m[2]) stages.add(m[2].toLowerCase());
  }
  return base;
}

/**
 * SHA-256 over the relative paths and contents of a build context (sorted, ignoring local installs
 * and build output), so the tag changes exactly when what `docker build` sees changes.
 */
export function contextHash(dir: string): string {
  if (!fs.existsSync(path.join(dir, 'Dockerfile'))) {
    throw new Error(`images stack: no Dockerfile in build context ${dir}`);
  }
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (IGNORED.has(entry.name)) continue;
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) files.push(child);
    }
  };
  walk('');
  files.sort();
  const hash = crypto.createHash('sha256');
  for (const f of files) {
    hash
      .update(f)
      .update('\0')
      .update(fs.readFileSync(path.join(dir, f)))
      .update('\0');
  }
  return hash.digest('hex');
}
