#!/usr/bin/env node
/**
 * The 2G budget: the first load of the app shell (dist/index.html, every script and stylesheet it
 * references, and everything those scripts import statically, transitively), together with the
 * service worker the page registers on that visit (dist/sw.js and its imports; a file both load
 * counts once, as the browser fetches it once), must be at most 100 KB (100 000 bytes) gzipped in
 * total. Dynamic import()s are not part of the first load.
 * Prints a table and exits 1 when the budget is exceeded (2 when dist/ is missing).
 *
 * Usage: node scripts/check-budget.mjs [distDir] [limitBytes]
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, '..', 'dist'));
const LIMIT = Number(process.argv[3] ?? 100_000);

const indexPath = join(dist, 'index.html');
if (!existsSync(indexPath)) {
  console.error(`check-budget: ${indexPath} not found; run vite build first`);
  process.exit(2);
}

/** URL path as the page would request it → file in dist. */
function fileOf(url, fromUrl = '/') {
  if (/^(?:[a-z]+:)?\/\//i.test(url) || url.startsWith('data:')) return undefined;
  const clean = url.split(/[?#]/)[0];
  const abs = clean.startsWith('/') ? clean : posix.join(posix.dirname(fromUrl), clean);
  return { url: abs, path: join(dist, ...abs.split('/').filter(Boolean)) };
}

const html = readFileSync(indexPath, 'utf8');
const queue = [];
const attr = (tag, name) => new RegExp(`\\b${name}\\s*=\\s*["']([^"']+)["']`, 'i').exec(tag)?.[1];
for (const tag of html.match(/<script\b[^>]*>/gi) ?? []) {
  const src = attr(tag, 'src');
  if (src) queue.push(src);
}
for (const tag of html.match(/<link\b[^>]*>/gi) ?? []) {
  const rel = (attr(tag, 'rel') ?? '').toLowerCase();
  const href = attr(tag, 'href');
  if (href && (rel === 'stylesheet' || rel === 'modulepreload')) queue.push(href);
}

// Static imports in (minified) ES modules: `import x from"./a.js"`, `import"./a.js"`, `export*from"./a.js"`.
// import("...") (dynamic) is deliberately not matched.
const STATIC = /(?:^|[;}\s)])(?:import|export)\s*(?:[\w$*{},\s]+?\s*from\s*)?["']([^"']+\.(?:js|mjs|css))["']/g;

const seen = new Map();
const rows = [];
const add = (url, from) => {
  const f = fileOf(url, from);
  if (!f || seen.has(f.url)) return;
  if (!existsSync(f.path)) {
    console.error(`check-budget: ${f.url} is referenced but missing from dist`);
    process.exitCode = 1;
    return;
  }
  const bytes = readFileSync(f.path);
  const gz = gzipSync(bytes, { level: 9 }).length;
  seen.set(f.url, gz);
  rows.push({ file: f.url, raw: bytes.length, gzip: gz });
  if (/\.m?js$/.test(f.path)) {
    const code = bytes.toString('utf8');
    for (const m of code.matchAll(STATIC)) add(m[1], f.url);
  }
};
const htmlGz = gzipSync(Buffer.from(html), { level: 9 }).length;
rows.push({ file: '/index.html', raw: Buffer.byteLength(html), gzip: htmlGz });
for (const u of queue) add(u, '/');
// The page registers the worker during the first visit: its bytes cross the same 2G link.
if (existsSync(join(dist, 'sw.js'))) add('/sw.js', '/');

const total = rows.reduce((s, r) => s + r.gzip, 0);
const kb = (n) => (n / 1000).toFixed(1).padStart(8);
const width = Math.max(...rows.map((r) => r.file.length), 10);
console.log(`\nFirst-load budget (${relative(process.cwd(), dist) || '.'}), gzip level 9:`);
console.log(`${'file'.padEnd(width)}  ${'raw kB'.padStart(8)}  ${'gzip kB'.padStart(8)}`);
for (const r of rows) console.log(`${r.file.padEnd(width)}  ${kb(r.raw)}  ${kb(r.gzip)}`);
console.log(`${'TOTAL'.padEnd(width)}  ${kb(rows.reduce((s, r) => s + r.raw, 0))}  ${kb(total)}   (limit ${(LIMIT / 1000).toFixed(1)} kB)`);
if (total > LIMIT) {
  console.error(`\nBUDGET EXCEEDED: the first load is ${(total / 1000).toFixed(1)} kB gzipped, over ${(LIMIT / 1000).toFixed(1)} kB.`);
  process.exit(1);
}
console.log(`Budget OK: ${(total / 1000).toFixed(1)} kB of ${(LIMIT / 1000).toFixed(1)} kB.`);
