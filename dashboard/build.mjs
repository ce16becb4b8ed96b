// Bundles the dashboard into dist/: src/main.ts -> dist/app.js (minified, with a source map)
// plus the static index.html and style.css. Run with `npm run build`.
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');

// Start from an empty dist/ so no stale file from an older build is ever served.
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await esbuild.build({
  entryPoints: [join(root, 'src/main.ts')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  minify: true,
  sourcemap: true,
  target: 'es2020',
  format: 'iife',
  platform: 'browser',
  // socket.io-client's debug dependency looks at process.env in some builds.
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'none',
  logLevel: 'info',
});

for (const file of ['index.html', 'style.css']) {
  await copyFile(join(root, file), join(dist, file));
}
console.log('dashboard: wrote dist/index.html, dist/app.js, dist/style.css');
