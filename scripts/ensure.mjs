#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies when package-lock.json changed since the
// last install, then builds (tsc -b is incremental: a no-op when nothing changed).
// Plain JavaScript on purpose: it runs on whatever Node the machine has, before Node 24 is installed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'node_modules', '.settle-install-stamp');
const lock = readFileSync(join(root, 'package-lock.json'));
const want = createHash('sha256')
  .update(lock)
  .update(readFileSync(join(root, 'package.json')))
  .digest('hex');
const quiet = process.argv.includes('--quiet');
const log = (m) => quiet || console.error(`[settle] ${m}`);
const run = (cmd, args) =>
  execFileSync(cmd, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });

const installed =
  existsSync(stamp) && readFileSync(stamp, 'utf8') === want && existsSync(join(root, 'node_modules', '.bin', 'node'));
if (!installed) {
  log('installing dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, want);
}
const node = join(root, 'node_modules', '.bin', 'node');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
log('building (tsc -b)…');
run(node, [tsc, '-b']);
