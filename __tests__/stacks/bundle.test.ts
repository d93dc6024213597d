// The cdktf app runs as an esbuild bundle (cdktf.json); it must synthesize exactly what the sources do.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../main';
import { bundleApp, DEFAULT_BUNDLE } from '../../scripts/bundle-app';

const repo = path.resolve(__dirname, '..', '..');

function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, e.name);
      if (e.isDirectory()) walk(child);
      else out[child] = fs.readFileSync(path.join(dir, child), 'utf8');
    }
  };
  walk('');
  return out;
}

test('GIVEN cdktf.json WHEN read THEN cdktf builds, runs the compiled bundle-app script and then the bundle it writes', () => {
  const app: string = JSON.parse(fs.readFileSync(path.join(repo, 'cdktf.json'), 'utf8')).app;
  const [build, bundle, run, ...rest] = app.split(' && ');
  expect([build, rest]).toEqual(['npm run --silent build', []]);
  const script = (step: string) => path.resolve(repo, /^node (\S+)$/.exec(step)?.[1] ?? `(not "node <file>": ${step})`);
  // tsc (tsconfig.json: rootDir ".", outDir "dist") compiles scripts/bundle-app.ts to dist/scripts/bundle-app.js.
  const compiled = path.join(repo, 'dist', path.relative(repo, require.resolve('../../scripts/bundle-app')).replace(/\.ts$/, '.js'));
  expect(script(bundle)).toBe(compiled);
  expect(script(run)).toBe(DEFAULT_BUNDLE);
});

test('GIVEN the bundled app WHEN it synthesizes THEN every file equals what the unbundled app writes', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h1-bundle-'));
  // Inside the repository, as the real bundle: the app finds images/ from its own folder.
  const bundle = path.join(repo, 'dist', `main.bundle.test-${process.pid}.js`);
  const saved = process.env.CDKTF_OUTDIR;
  try {
    bundleApp(bundle);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPELINE_') && k !== 'CDKTF_CONTEXT_JSON'));
    execFileSync(process.execPath, [bundle], { cwd: repo, env: { ...env, CDKTF_OUTDIR: path.join(tmp, 'bundled') }, stdio: 'pipe' });

    process.env.CDKTF_OUTDIR = path.join(tmp, 'sources');
    main();

    const bundled = readTree(path.join(tmp, 'bundled'));
    const sources = readTree(path.join(tmp, 'sources'));
    expect(Object.keys(bundled).filter((f) => f.endsWith('cdk.tf.json')).length).toBeGreaterThanOrEqual(4);
    expect(bundled).toEqual(sources);
  } finally {
    if (saved === undefined) delete process.env.CDKTF_OUTDIR;
    else process.env.CDKTF_OUTDIR = saved;
    fs.rmSync(bundle, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
