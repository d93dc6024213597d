// Offline `terraform init` + `validate` of synthesized stacks, shared by `npm start` and the tests.
// Offline means providers come from a filesystem mirror (/opt/tf-plugins here, or TF_PLUGIN_MIRROR)
// through a generated CLI config, unless TF_CLI_CONFIG_FILE already names an existing file.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ValidationResult {
  readonly valid: boolean;
  /** First error (summary: detail), when invalid. */
  readonly error?: string;
}

/** The terraform binary on PATH, or undefined. */
export function findTerraform(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'terraform');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Environment for terraform: an offline CLI config pointing at the provider mirror when one exists. */
export function terraformEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
  const configured = process.env.TF_CLI_CONFIG_FILE;
  if (configured && fs.existsSync(configured)) return env;
  const mirror = process.env.TF_PLUGIN_MIRROR ?? '/opt/tf-plugins';
  if (!fs.existsSync(mirror)) {
    delete env.TF_CLI_CONFIG_FILE;
    return env;
  }
  const file = path.join(os.tmpdir(), `tf-offline-${process.getuid?.() ?? 0}.tfrc`);
  const body = `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(mirror)}\n    include = ["registry.terraform.io/*/*"]\n  }\n}\n`;
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== body) fs.writeFileSync(file, body);
  env.TF_CLI_CONFIG_FILE = file;
  return env;
}

/**
 * terraformEnv() without any AWS credentials or instance metadata: `terraform test` with a mocked provider
 * and plans against the local AWS stub must never reach (or be able to reach) a real account.
 */
export function offlineTerraformEnv(): NodeJS.ProcessEnv {
  return {
    ...terraformEnv(),
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** Runs terraform (or any binary); resolves with its exit code and output, never rejects. */
export function run(terraform: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(terraform, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `terraform init -backend=false` then `terraform validate -json` in a synthesized stack folder. */
export async function validateStack(dir: string, terraform = findTerraform()): Promise<ValidationResult> {
  if (!terraform) return { valid: false, error: 'terraform not found on PATH' };
  const env = terraformEnv();
  const init = await run(terraform, ['init', '-backend=false', '-input=false', '-no-color'], dir, env);
  if (init.code !== 0) {
    return { valid: false, error: `terraform init failed: ${firstLines(init.stderr || init.stdout)}` };
  }
  const validate = await run(terraform, ['validate', '-json', '-no-color'], dir, env);
  try {
    const out = JSON.parse(validate.stdout) as { valid: boolean; diagnostics: { severity: string; summary: string; detail?: string }[] };
    if (out.valid) return { valid: true };
    const error = out.diagnostics.find((d) => d.severity === 'error') ?? out.diagnostics[0];
    return { valid: false, error: error ? `${error.summary}${error.detail ? `: ${error.detail}` : ''}` : 'invalid' };
  } catch {
    return { valid: false, error: `terraform validate failed: ${firstLines(validate.stderr || validate.stdout)}` };
  }
}

function firstLines(text: string): string {
  return text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 3)
    .join(' | ');
}

/** Version line of terraform, for reports. */
export function terraformVersion(terraform: string): string {
  return execFileSync(terraform, ['version'], { encoding: 'utf8', env: terraformEnv() }).split('\n')[0];
}
