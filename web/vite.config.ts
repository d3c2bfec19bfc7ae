/**
 * Builds the app into dist/: index.html, assets/*-[hash].js|css, the public files
 * (manifest.webmanifest, icons) and sw.js at the root. The sync library is an entry of its own
 * (assets/sync-[hash].js, exports kept), which the page imports and which the service worker — an
 * ES module built by a second build after the app — imports too: a first visit downloads the
 * library once, not once for the page and again for the worker. The worker gets the app shell's
 * file list written into it, so that it can precache exactly what this build produced (no
 * workbox).
 *
 * `vite` (dev) proxies the server's routes to CIVICSYNC_SERVER (default http://127.0.0.1:18200).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build, defineConfig, type Plugin } from 'vite';

const root = import.meta.dirname;

function publicFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...publicFiles(full, `${prefix}${name}/`));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

function serviceWorker(): Plugin {
  let outDir = resolve(root, 'dist');
  let publicDir = resolve(root, 'public');
  return {
    name: 'civicsync-service-worker',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
      publicDir = config.publicDir;
    },
    async writeBundle(_options, bundle) {
      const library = Object.values(bundle).find((c) => c.type === 'chunk' && c.isEntry && c.name === 'sync');
      if (!library || library.type !== 'chunk' || !library.exports.includes('openClient')) {
        throw new Error('the sync library entry (assets/sync-*.js exporting openClient) is missing from the build');
      }
      const libraryUrl = `/${library.fileName}`;
      const hash = createHash('sha256');
      const assets: string[] = [];
      for (const [file, chunk] of Object.entries(bundle)) {
        if (file.endsWith('.map')) continue;
        hash.update(file).update(chunk.type === 'chunk' ? chunk.code : chunk.source);
        if (file !== 'index.html') assets.push(`/${file}`);
      }
      const statics = publicDir ? publicFiles(publicDir).filter((f) => f !== 'sw.js') : [];
      for (const f of statics) hash.update(f).update(readFileSync(join(publicDir, f)));
      const precache = ['/', ...assets.sort(), ...statics.map((f) => `/${f}`).sort()];
      const version = hash.digest('hex').slice(0, 16);
      await build({
        configFile: false,
        root,
        mode: 'production',
        logLevel: 'warn',
        publicDir: false,
        envFile: false,
        define: {
          __PRECACHE__: JSON.stringify(precache),
          __CACHE_VERSION__: JSON.stringify(version),
        },
        build: {
          outDir,
          emptyOutDir: false,
          copyPublicDir: false,
          target: 'es2022',
          minify: true,
          sourcemap: false,
          reportCompressedSize: false,
          lib: { entry: resolve(root, 'src/sw.ts'), formats: ['es'], fileName: () => 'sw.js' },
          rollupOptions: {
            // The library is the page's own chunk, already downloaded and cached: import it, do not copy it.
            external: (id) => /(^|\/)sync\/index(\.ts)?$/.test(id),
            output: { paths: (id) => (/(^|\/)sync\/index(\.ts)?$/.test(id) ? libraryUrl : id) },
          },
        },
      });
      this.info?.(`sw.js: ${precache.length} files precached, cache version ${version}`);
    },
  };
}

const server = process.env.CIVICSYNC_SERVER ?? 'http://127.0.0.1:18200';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: { index: resolve(root, 'index.html'), sync: resolve(root, 'src/sync/index.ts') },
      // The library entry keeps its export names, for the service worker to import it.
      preserveEntrySignatures: 'exports-only',
    },
  },
  plugins: [serviceWorker()],
  server: {
    proxy: Object.fromEntries(['/v1', '/health', '/schemas', '/openapi.yaml'].map((p) => [p, { target: server, changeOrigin: false }])),
  },
  preview: {
    proxy: Object.fromEntries(['/v1', '/health', '/schemas', '/openapi.yaml'].map((p) => [p, { target: server, changeOrigin: false }])),
  },
});
