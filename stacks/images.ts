// images: the only stack with the docker provider. Builds images/sftp-lister and images/converter and
// pushes them to their ECR repositories under a tag derived from the build context's content, then
// exports `repo:tag@sha256:digest` so task definitions change (and roll) exactly when the code does.
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
import { Fn, TerraformOutput } from 'cdktf';
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
  /** Content-derived tag per image (known at synth time). */
  readonly tags: Record<ImageName, string>;

  constructor(scope: Construct, id: string, props: ImagesStackProps) {
    super(scope, id, props);
    const imagesDir = props.imagesDir ?? path.join(repoRoot(), 'images');
    const { region, cpuArchitecture } = this.config;
    const platform = cpuArchitecture === 'ARM64' ? 'linux/arm64' : 'linux/amd64';

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
    const tags = {} as Record<ImageName, string>;
    for (const [name, spec] of Object.entries(IMAGES) as [ImageName, (typeof IMAGES)[ImageName]][]) {
      const context = path.join(imagesDir, spec.dir);
      const hash = contextHash(context);
      const tag = `src-${hash.slice(0, 16)}`;
      const repositoryUrl = props.cluster.repositories[name].repositoryUrl;
      const image = new Image(this, `image-${spec.dir}`, {
        name: `${repositoryUrl}:${tag}`,
        platform,
        buildAttribute: {
          context,
          dockerfile: 'Dockerfile',
          platform,
          label: { 'org.opencontainers.image.revision': hash },
        },
        triggers: { source_hash: hash },
      });
      // Tags are immutable in ECR: keep pushed images (the lifecycle policy prunes them), never overwrite.
      const pushed = new RegistryImage(this, `push-${spec.dir}`, {
        name: image.name,
        keepRemotely: true,
        triggers: { source_hash: hash },
      });
      imageRefs[name] = `${repositoryUrl}:${tag}@${pushed.sha256Digest}`;
      tags[name] = tag;
      new TerraformOutput(this, `image_${spec.dir.replace('-', '_')}`, { value: imageRefs[name] });
    }
    this.imageRefs = imageRefs;
    this.tags = tags;
  }
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
    hash.update(f).update('\0').update(fs.readFileSync(path.join(dir, f))).update('\0');
  }
  return hash.digest('hex');
}
