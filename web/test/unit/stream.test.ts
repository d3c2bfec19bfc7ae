import { IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebClient } from '../../src/sync/client';
import { FakeServer } from './fake-server';
import { fakeEventSources } from './fake-event-source';
import { BOOKING, Device } from './helpers';

/**
 * The live stream (GET /v1/sync/stream, docs/protocol.md "The live stream") in auto sync. The
 * library's timers run on fake time (only setTimeout/clearTimeout are faked: IndexedDB and the
 * promises under it go on in real time); the server's side of the stream is a FakeEventSource.
 */

const realSetTimeout = globalThis.setTimeout;
const open: Device[] = [];

afterEach(() => {
  for (const d of open.splice(0)) d.client.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function fakeTime(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
}

async function device(server: FakeServer, options: Parameters<typeof Device.enrolled>[2] = {}): Promise<Device> {
  const d = await Device.enrolled(server, {}, options);
  open.push(d);
  return d;
}

/** Waits (in real time) until the client runs no sync and has none queued. */
async function idle(d: Device): Promise<void> {
  const c = d.client as unknown as { running?: Promise<unknown>; queued?: Promise<unknown> };
  const end = Date.now() + 5000;
  do {
    await new Promise((r) => realSetTimeout(r, 2));
    if (Date.now() > end) throw new Error('the sync did not finish');
  } while (c.running || c.queued);
}

/** Moves fake time on, then lets whatever sync that started finish. */
async function advance(d: Device, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await idle(d);
}

/** Syncs the server saw: every sync pulls once here (nothing held, one page). */
function syncs(server: FakeServer): number {
  return server.requests.filter((r) => r.startsWith('GET /v1/sync/pull')).length;
}

function tokenOf(server: FakeServer, d: Device): string {
  return server.device(d.client.enrollment()!.deviceId)!.token;
}

describe('the live stream', () => {
  it('opens with the token in the URL; a changes event starts one sync, and events close together make one', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    const other = await device(server);
    fakeTime();
    d.client.startAutoSync();
    const es = streams.last();
    expect(es.url).toBe('https://sync.test/v1/sync/stream?access_token=' + encodeURIComponent(tokenOf(server, d)));
    expect(d.client.status().live).toBeFalsy();
    es.event('ready', 1); // before the first sync has started: that sync will see everything
    expect(d.client.status().live).toBe(true);
    await advance(d, 0);
    expect(syncs(server)).toBe(1);

    const id = await other.client.create('appointments', BOOKING);
    await other.client.syncNow();
    const before = syncs(server);
    es.event('changes', 2);
    await advance(d, 100);
    es.event('changes', 3);
    await advance(d, 100);
    es.event('changes', 3);
    await advance(d, 99);
    expect(syncs(server)).toBe(before); // debounced (300 ms)
    await advance(d, 1);
    expect(syncs(server)).toBe(before + 1);
    expect(await d.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 1 });
    await advance(d, 10_000);
    expect(syncs(server)).toBe(before + 1);

    // while live the timer only polls as a safety net, every 5 minutes instead of 30 s
    await advance(d, 280_000);
    expect(syncs(server)).toBe(before + 1);
    await advance(d, 10_000);
    expect(syncs(server)).toBe(before + 2);
  });

  it('an event during a sync makes one more sync after it, never two at once', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    let inFlight = 0;
    let most = 0;
    const c = d.client as unknown as { runSync(): Promise<unknown> };
    const run = c.runSync.bind(d.client);
    c.runSync = async () => {
      most = Math.max(most, ++inFlight);
      try {
        return await run();
      } finally {
        inFlight--;
      }
    };
    fakeTime();
    d.client.startAutoSync();
    const es = streams.last().open();
    await advance(d, 0);
    const before = syncs(server);
    es.event('changes', 5);
    await vi.advanceTimersByTimeAsync(300); // the sync starts...
    expect((d.client as unknown as { running?: unknown }).running).toBeDefined();
    es.event('changes', 6); // ...and something else is committed meanwhile
    es.event('changes', 7);
    await advance(d, 300);
    expect(syncs(server)).toBe(before + 2);
    expect(most).toBe(1);
  });

  it('a broken stream falls back to polling every 30 s and is reopened with backoff', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    fakeTime();
    d.client.startAutoSync();
    const es0 = streams.last();
    es0.event('ready', 1);
    await advance(d, 0);
    const first = syncs(server);

    es0.fail();
    expect(es0.closed).toBe(true); // EventSource's own reconnect (with the same token) is not used
    expect(d.client.status().live).toBe(false);
    // reopened after 3 s × jitter (random() = 0.5 → 2.25 s)
    await advance(d, 2249);
    expect(streams.all).toHaveLength(1);
    await advance(d, 1);
    expect(streams.all).toHaveLength(2);
    // it fails again: the wait doubles (4.5 s)
    streams.last().fail();
    await advance(d, 4499);
    expect(streams.all).toHaveLength(2);
    await advance(d, 1);
    expect(streams.all).toHaveLength(3);
    streams.last().fail(); // next try in 9 s
    expect(syncs(server)).toBe(first);
    // meanwhile the timer polls every 30 s again
    await advance(d, 30_000 - 6750);
    expect(syncs(server)).toBe(first + 1);
    expect(streams.all).toHaveLength(4);

    // the fourth opens: a ready after a reconnect syncs (something may have been missed)
    const es3 = streams.last();
    es3.event('ready', 9);
    expect(d.client.status().live).toBe(true);
    await advance(d, 300);
    expect(syncs(server)).toBe(first + 2);
    await advance(d, 60_000);
    expect(syncs(server)).toBe(first + 2); // live again: no 30 s poll

    // a stream that stayed up a while breaks: the backoff starts again from its base
    d.clock += 60_000; // the client's clock (injected) follows the minute that passed
    es3.fail();
    await advance(d, 2250);
    expect(streams.all).toHaveLength(5);
    expect(streams.all.slice(0, 4).every((x) => x.closed)).toBe(true);
  });

  it('a renewed token is used when the stream is reopened', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    fakeTime();
    d.client.startAutoSync();
    const es0 = streams.last();
    es0.event('ready', 1);
    await advance(d, 0);
    const old = tokenOf(server, d);
    expect(es0.token).toBe(old);

    // renewed while the stream is open: closed and opened again with the new token
    await d.client.renewToken();
    expect(tokenOf(server, d)).not.toBe(old);
    expect(es0.closed).toBe(true);
    expect(streams.all).toHaveLength(2);
    expect(streams.last().token).toBe(tokenOf(server, d));

    // the token expires: the server refuses the stream; the next sync renews and the stream comes back at once
    const expired = tokenOf(server, d);
    server.expireToken(d.client.enrollment()!.deviceId);
    streams.last().open().fail();
    await advance(d, 2250);
    expect(streams.all).toHaveLength(3);
    expect(streams.last().token).toBe(expired);
    streams.last().fail(); // next try planned in 4.5 s; a sync comes first
    await d.client.syncNow(); // TOKEN_EXPIRED, renewal, then the stream at once with the new token
    expect(tokenOf(server, d)).not.toBe(expired);
    expect(streams.all).toHaveLength(4);
    expect(streams.last().token).toBe(tokenOf(server, d));
    expect(streams.last().closed).toBe(false);
  });

  it('a token renewed in another tab reopens the stream with it', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    d.client.startAutoSync();
    streams.last().event('ready', 1);
    await idle(d);
    const tab2 = await WebClient.open({ baseUrl: 'https://sync.test', dbName: 'civicsync-test', fetch: server.fetch, indexedDB: d.idb, IDBKeyRange });
    await tab2.renewToken();
    const end = Date.now() + 3000;
    while (streams.all.length < 2 && Date.now() < end) await new Promise((r) => realSetTimeout(r, 5));
    expect(streams.all[0]!.closed).toBe(true);
    expect(streams.last().token).toBe(tokenOf(server, d));
    tab2.close();
  });

  it('stopAutoSync and close() close the stream, and nothing reopens it', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    fakeTime();
    d.client.startAutoSync();
    const es0 = streams.last();
    es0.event('ready', 1);
    await advance(d, 0);
    d.client.stopAutoSync();
    expect(es0.closed).toBe(true);
    expect(d.client.status().live).toBe(false);
    const n = syncs(server);
    await advance(d, 600_000);
    expect(streams.all).toHaveLength(1);
    expect(syncs(server)).toBe(n);

    // a stream broken just before the stop is not reopened either
    d.client.startAutoSync();
    streams.last().fail();
    d.client.stopAutoSync();
    await advance(d, 600_000);
    expect(streams.all).toHaveLength(2);

    d.client.startAutoSync();
    const es2 = streams.last().open();
    d.client.close();
    expect(es2.closed).toBe(true);
  });

  it('offline closes the stream; online opens it again at once', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const win = new EventTarget();
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
    vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
    const d = await device(server, { eventSource: streams.ctor });
    fakeTime();
    d.client.startAutoSync();
    const es0 = streams.last();
    es0.event('ready', 1);
    await advance(d, 0);

    server.offlineRequests = 1_000_000;
    win.dispatchEvent(new Event('offline'));
    expect(es0.closed).toBe(true);
    expect(d.client.status()).toMatchObject({ online: false, live: false });
    await advance(d, 600_000);
    expect(streams.all).toHaveLength(1);

    server.offlineRequests = 0;
    win.dispatchEvent(new Event('online'));
    expect(streams.all).toHaveLength(2);
    streams.last().event('ready', 2);
    await advance(d, 300);
    expect(d.client.status()).toMatchObject({ online: true, live: true, phase: 'idle' });
    expect(d.client.status().lastErrorCode).toBeUndefined();
  });

  it('DEVICE_REVOKED closes the stream for good', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = await device(server, { eventSource: streams.ctor });
    fakeTime();
    d.client.startAutoSync();
    const es0 = streams.last();
    es0.event('ready', 1);
    await advance(d, 0);
    server.revoke(d.client.enrollment()!.deviceId);
    es0.event('changes', 2);
    await advance(d, 300);
    expect(d.client.status()).toMatchObject({ lastErrorCode: 'DEVICE_REVOKED', live: false });
    expect(es0.closed).toBe(true);
    const n = syncs(server);
    await advance(d, 3_600_000);
    expect(streams.all).toHaveLength(1);
    expect(syncs(server)).toBe(n);
  });

  it('not enrolled: no stream until enrollment', async () => {
    const server = new FakeServer();
    const streams = fakeEventSources();
    const d = new Device(server, {}, { eventSource: streams.ctor });
    await d.open();
    open.push(d);
    d.client.startAutoSync();
    expect(streams.all).toHaveLength(0);
    await d.client.enroll('GOOD-CODE', 'tablet');
    expect(streams.all).toHaveLength(1);
    expect(streams.last().token).toBe(tokenOf(server, d));
  });
});

describe('without a live stream', () => {
  it('no EventSource (Node, some service workers): polling only, every 30 s', async () => {
    vi.stubGlobal('EventSource', undefined);
    const server = new FakeServer();
    const d = await device(server);
    fakeTime();
    d.client.startAutoSync();
    await advance(d, 0);
    expect(syncs(server)).toBe(1);
    expect(d.client.status().live).toBeFalsy();
    await advance(d, 29_999);
    expect(syncs(server)).toBe(1);
    await advance(d, 1);
    expect(syncs(server)).toBe(2);
  });

  it("the platform's EventSource is used when none is given; null turns the stream off", async () => {
    const streams = fakeEventSources();
    vi.stubGlobal('EventSource', streams.ctor);
    const server = new FakeServer();
    const d = await device(server);
    d.client.startAutoSync();
    expect(streams.all).toHaveLength(1);
    const off = await device(server, { eventSource: null });
    off.client.startAutoSync();
    expect(streams.all).toHaveLength(1);
  });
});
