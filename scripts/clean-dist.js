// Before `tsc`: removes compiled files in dist/ whose TypeScript source is gone. tsc never deletes, and a
// stale dist/stacks/config.js (from before stacks/config.ts became stacks/config/) shadows the new
// dist/stacks/config/index.js. Current files stay, so a process running from dist/ meanwhile is not cut off.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

function sweep(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      sweep(file);
      if (fs.readdirSync(file).length === 0) fs.rmdirSync(file);
    } else if (entry.name.endsWith('.js') && !entry.name.includes('.bundle')) {
      const source = path.join(root, path.relative(dist, file)).replace(/\.js$/, '.ts');
      if (!fs.existsSync(source)) fs.rmSync(file);
    }
  }
}

if (fs.existsSync(dist)) sweep(dist);
