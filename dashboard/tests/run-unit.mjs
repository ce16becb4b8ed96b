// Bundles tests/unit/*.test.ts with esbuild (node target) into .test-build/ and runs them with
// `node --test`. The dashboard's sources are TypeScript and node 20 cannot run them directly.
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, '.test-build');
await rm(out, { recursive: true, force: true });
const dir = join(root, 'tests/unit');
const entries = (await readdir(dir)).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f));
await esbuild.build({
  entryPoints: entries,
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const files = (await readdir(out)).filter((f) => f.endsWith('.test.mjs')).map((f) => join(out, f));
const run = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);
