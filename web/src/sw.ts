/**
 * CivicSync's service worker, built as its own bundle to dist/sw.js (scope /) by the plugin in
 * vite.config.ts, which fills in __PRECACHE__ (the app shell: '/', the hashed assets, the
 * manifest and icons) and __CACHE_VERSION__ (a hash of them).
 *
 * - install: precaches the shell into a cache named by the version; activate drops older ones.
 * - fetch: serves the shell cache-first; a navigation gets the cached index.html ('/'), so the
 *   app opens with no network. API, health, schema and OpenAPI requests are never intercepted
 *   (no respondWith), so they go to the network exactly as the page sent them.
 * - sync (Background Sync, tag 'civicsync-sync'): runs a sync with the library. The library
 *   holds a Web Lock while it syncs, so the page and this worker never sync at the same time.
 */
import { openClient } from './sync/index';

declare const __PRECACHE__: string[];
declare const __CACHE_VERSION__: string;

interface ExtendableEvent extends Event { waitUntil(p: Promise<unknown>): void }
interface InstallEvent extends ExtendableEvent {
  /** ServiceWorker static routing (Chromium 123+): requests that match go to the network without starting this worker. */
  addRoutes?(rules: unknown): Promise<void>;
}
interface FetchEvent extends ExtendableEvent { readonly request: Request; respondWith(r: Response | Promise<Response>): void }
interface SyncEvent extends ExtendableEvent { readonly tag: string }
interface Scope {
  readonly location: Location;
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install', l: (e: InstallEvent) => void): void;
  addEventListener(type: 'activate', l: (e: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', l: (e: FetchEvent) => void): void;
  addEventListener(type: 'sync', l: (e: SyncEvent) => void): void;
  addEventListener(type: 'message', l: (e: ExtendableEvent & { data: unknown }) => void): void;
}

const sw = self as unknown as Scope;
const PREFIX = 'civicsync-shell-';
const CACHE = PREFIX + __CACHE_VERSION__;
const SHELL = '/';
/** Never answered by the worker: the API and the server's own documents. */
const BYPASS = /^\/(v1\/|health\/|schemas\/|openapi\.yaml$)/;
export const SYNC_TAG = 'civicsync-sync';

const BYPASS_PATHS = ['/v1/*', '/health/*', '/schemas/*', '/openapi.yaml'];

sw.addEventListener('install', (e) => {
  // Where the browser has static routing, the API never even reaches this worker (so the page's own
  // request is the one on the wire); elsewhere the fetch handler below leaves those requests alone.
  const Pattern = (globalThis as { URLPattern?: new (init: { pathname: string }) => unknown }).URLPattern;
  if (e.addRoutes && Pattern) {
    try {
      e.waitUntil(
        e.addRoutes(BYPASS_PATHS.map((pathname) => ({ condition: { urlPattern: new Pattern({ pathname }) }, source: 'network' }))).catch(() => undefined),
      );
    } catch {
      /* static routing not supported in this form */
    }
  }
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(__PRECACHE__.map((u) => new Request(u, { cache: 'reload' }))))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin || BYPASS.test(url.pathname)) return;
  if (req.mode === 'navigate') {
    e.respondWith(
      caches.open(CACHE).then(async (c) => (await c.match(SHELL)) ?? fetch(req).catch(async () => (await c.match(SHELL)) ?? Response.error())),
    );
    return;
  }
  if (!__PRECACHE__.includes(url.pathname)) return;
  e.respondWith(caches.open(CACHE).then(async (c) => (await c.match(url.pathname)) ?? fetch(req)));
});

let client: ReturnType<typeof openClient> | undefined;

async function backgroundSync(): Promise<void> {
  client ??= openClient({ baseUrl: sw.location.origin }).catch((e) => {
    client = undefined;
    throw e;
  });
  const c = await client;
  if (!c.enrollment()) return;
  const report = await c.syncNow();
  // An incomplete sync throws, so that the browser tries the sync event again later.
  if (!report.complete) throw new Error('sync incomplete; the browser will retry');
}

sw.addEventListener('sync', (e) => {
  if (e.tag === SYNC_TAG) e.waitUntil(backgroundSync());
});

sw.addEventListener('message', (e) => {
  if (e.data === 'skipWaiting') e.waitUntil(sw.skipWaiting());
});
