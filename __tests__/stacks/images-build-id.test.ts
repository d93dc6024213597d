// The images stack's tags, applied with real Terraform. The docker provider is not in the offline mirror,
// but the build ids are terraform_data (built into Terraform), so the part of the tag that decides when
// an image is rebuilt and pushed under a new tag runs here for real: same tag from one apply to the next,
// a new one when the source or the platform changes, and a new one after the state is lost (ECR refuses
// a push under an existing immutable tag).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTerraform, run, terraformEnv } from '../../scripts/terraform';
import { makeImagesDir, SynthStack, synthesize } from './synth';

const TF_TIMEOUT = 300_000;
type Tags = Record<string, string>;

/** The images stack's build ids, and one output per image: its tag (the image name after the repository URL). */
function tagConfig(images: SynthStack): object {
  const output: Record<string, { value: string }> = {};
  for (const [logical, image] of Object.entries(images.resources('docker_image'))) {
    const name = image.name as string;
    output[logical] = { value: name.slice(name.indexOf('}:') + 2) };
  }
  return { resource: { terraform_data: images.json.resource?.terraform_data }, output };
}

describe('image tags under terraform apply', () => {
  const terraform = findTerraform()!;
  const env = terraformEnv();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'h1-build-id-'));
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  const tf = async (...args: string[]) => {
    const r = await run(terraform, [...args, '-input=false', '-no-color'], work, env);
    if (r.code !== 0 && !(args[0] === 'plan' && r.code === 2)) throw new Error(`terraform ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
    return r;
  };
  const apply = async (images: SynthStack): Promise<Tags> => {
    fs.writeFileSync(path.join(work, 'main.tf.json'), JSON.stringify(tagConfig(images)));
    await tf('apply', '-auto-approve');
    const out = JSON.parse((await run(terraform, ['output', '-json'], work, env)).stdout) as Record<string, { value: string }>;
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.value]));
  };

  test(
    'GIVEN the images stack WHEN applied, changed, switched to ARM64 and applied after lost state THEN the tag changes exactly then',
    async () => {
      expect(terraform).toBeDefined();
      await tf('init');
      const imagesDir = makeImagesDir();
      const first = await apply(synthesize({}, imagesDir).stacks.images);
      expect(Object.keys(first).sort()).toEqual(['image-converter', 'image-sftp-lister']);
      for (const tag of Object.values(first)) expect(tag).toMatch(/^src-[0-9a-f]{16}-amd64-[0-9a-f-]{36}$/);

      // Nothing changed: nothing to do, same tags (task definitions do not roll).
      const plan = await tf('plan', '-detailed-exitcode');
      expect(plan.code).toBe(0);
      expect(await apply(synthesize({}, imagesDir).stacks.images)).toEqual(first);

      // The converter's source changes: only its tag changes.
      fs.appendFileSync(path.join(imagesDir, 'converter', 'src', 'index.js'), '// changed\n');
      const edited = await apply(synthesize({}, imagesDir).stacks.images);
      expect(edited['image-sftp-lister']).toBe(first['image-sftp-lister']);
      expect(edited['image-converter']).not.toBe(first['image-converter']);

      // Another platform: both rebuild, under arm64 tags.
      const arm = await apply(synthesize({ env: { PIPELINE_CPU_ARCHITECTURE: 'ARM64' } }, imagesDir).stacks.images);
      for (const [name, tag] of Object.entries(arm)) {
        expect(tag).toMatch(/^src-[0-9a-f]{16}-arm64-[0-9a-f-]{36}$/);
        expect(tag).not.toBe(edited[name]);
      }

      // The state is lost: the same source and platform get new tags, so the push never meets an existing one.
      fs.rmSync(path.join(work, 'terraform.tfstate'));
      const afterLoss = await apply(synthesize({ env: { PIPELINE_CPU_ARCHITECTURE: 'ARM64' } }, imagesDir).stacks.images);
      for (const [name, tag] of Object.entries(afterLoss)) {
        expect(tag.slice(0, 'src-0123456789abcdef-arm64'.length)).toBe(arm[name].slice(0, 'src-0123456789abcdef-arm64'.length));
        expect(tag).not.toBe(arm[name]);
      }
    },
    TF_TIMEOUT,
  );
});
