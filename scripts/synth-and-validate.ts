// `npm start`: synthesize every stack into cdktf.out/ and, where terraform is on PATH, run an offline
// `terraform init` + `validate` on each stack without the docker provider (its provider is not in the
// offline mirror). Prints one line per stack; exits non-zero on invalid configuration or stacks.
import * as path from 'node:path';
import { main } from '../main';
import { ConfigError } from '../stacks/config';
import { listStacks } from '../tools/tf-json';
import { findTerraform, terraformVersion, validateStack } from './terraform';

/** Synthesizes the app and validates its stacks; reports through `log` (errors: `error`); returns the exit code. */
export async function synthAndValidate(log: (line: string) => void = console.log, error: (line: string) => void = console.error): Promise<number> {
  const started = process.hrtime.bigint();
  try {
    main();
  } catch (err) {
    if (err instanceof ConfigError) {
      error(err.message);
      return 2;
    }
    throw err;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const outdir = path.resolve(process.env.CDKTF_OUTDIR ?? 'cdktf.out');
  const stacks = listStacks(outdir);
  log(`synthesized ${stacks.length} stacks into ${path.relative(process.cwd(), outdir) || outdir} in ${seconds.toFixed(2)} s`);
  log(`deploy order: ${stacks.map((s) => s.name).join(', ')}`);

  const terraform = findTerraform();
  if (terraform) log(`validating offline with ${terraformVersion(terraform)}`);
  const width = Math.max(...stacks.map((s) => s.name.length));
  const lines = await Promise.all(
    stacks.map(async (s) => {
      const head = `${s.name.padEnd(width)}  ${String(s.resourceCount).padStart(3)} resources  `;
      if (s.providers.includes('docker')) return { ok: true, line: `${head}not validated: uses the docker provider (not in the offline mirror)` };
      if (!terraform) return { ok: true, line: `${head}not validated: terraform is not on PATH` };
      const result = await validateStack(s.dir, terraform);
      return { ok: result.valid, line: `${head}${result.valid ? 'valid' : `INVALID: ${result.error}`}` };
    }),
  );
  for (const l of lines) log(l.line);
  return lines.every((l) => l.ok) ? 0 : 1;
}

if (require.main === module) {
  synthAndValidate().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
