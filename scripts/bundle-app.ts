// Bundles the cdktf app (main.ts and everything it imports, node_modules included) into one file,
// dist/main.bundle.js, which cdktf.json runs. Why: loading ~450 separate modules (4.8 MB of provider
// classes with inline source maps, plus cdktf's) costs more than the synth itself; one bundle without
// comments synthesizes the same JSON about 30% faster (see `npm run bench:synth`).
// Usage: node dist/scripts/bundle-app.js [OUTFILE]
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { repoRoot } from '../stacks/paths';

export const DEFAULT_BUNDLE = path.join(repoRoot(), 'dist', 'main.bundle.js');

/** Writes the bundle (it must live inside the repository: the app finds images/ from its own folder). */
export function bundleApp(outfile = DEFAULT_BUNDLE): string {
  buildSync({
    entryPoints: [path.join(repoRoot(), 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return outfile;
}

if (require.main === module) {
  bundleApp(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
}
