#!/usr/bin/env node
// Installs and builds each container image's own package (images/*/package.json).
// Each image keeps its own package.json + lockfile so its Dockerfile can `npm ci` in its own build
// context; the root install runs this so tests and local tools use the same locked dependencies.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const buildOnly = process.argv.includes('--build-only');
const imagesDir = path.join(__dirname, '..', 'images');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

for (const name of fs.existsSync(imagesDir) ? fs.readdirSync(imagesDir).sort() : []) {
  const dir = path.join(imagesDir, name);
  const manifest = path.join(dir, 'package.json');
  if (!fs.existsSync(manifest)) continue;
  const run = (args) => execFileSync(npm, args, { cwd: dir, stdio: 'inherit' });
  if (!buildOnly) {
    const locked = fs.existsSync(path.join(dir, 'package-lock.json'));
    run([locked ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error']);
  }
  if (JSON.parse(fs.readFileSync(manifest, 'utf8')).scripts?.build) run(['run', '--silent', 'build']);
}
