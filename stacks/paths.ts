// Where the repository is, from wherever this code runs (sources, dist/, or the dist/ bundle).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root: the nearest folder above this file holding cdktf.json. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'cdktf.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find cdktf.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}
