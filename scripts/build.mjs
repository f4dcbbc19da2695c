// Bundles the three entry points into self-contained ESM files in dist/ (committed; the
// action runs from them without node_modules). Deterministic: same sources, same bytes.
import { build } from 'esbuild';
import { chmod, rm } from 'node:fs/promises';

await rm('dist', { recursive: true, force: true });
await build({
  entryPoints: { main: 'src/entry/main.ts', post: 'src/entry/post.ts', cli: 'src/cli/index.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  legalComments: 'eof',
  logLevel: 'warning',
  // CommonJS dependencies call require(); ESM output has none unless we make one.
  banner: {
    js: "import { createRequire as __pipelockCreateRequire } from 'node:module';\nconst require = __pipelockCreateRequire(import.meta.url);",
  },
});
await chmod('dist/cli.js', 0o755);
