import { describe, expect, it } from 'vitest';
import { IDBKeyRange } from 'fake-indexeddb';
import { WebClient } from '../../src/sync/client';
import { FakeServer } from './fake-server';
import { BOOKING, Device } from './helpers';

const SLOT_FULL = 'Your booking for 10:00 could not be kept: that slot is full. Please choose another time.';

describe('pull and rebase', () => {
  it("a pull brings other devices' records and their later versions", async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const b = await Device.enrolled(server);
    const id = await a.client.create('appointments', { ...BOOKING, notes: ['first visit'] });
    await a.client.syncNow();
    expect((await b.client.syncNow()).pulled).toBe(1);
    expect(await b.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 1, data: { notes: ['first visit'] } });
    await a.client.update('appointments', id, { notes: ['first visit', 'bring card'] });
    await a.client.syncNow();
    await b.client.syncNow();
    expect(await b.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 2, data: { notes: ['first visit', 'bring card'] } });
  });

  it('rebase: the local view is the server record with the pending change replayed on top', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', { ...BOOKING, notes: ['first visit'] });
    await a.client.syncNow();
    await a.client.update('appointments', id, { patientPhone: '+94771234567' });
    server.put('appointments', id, { ...server.get('appointments', id)!.data, notes: ['first visit', 'bring card'] });
    server.offlineRequests = 1; // the push fails before reaching the server: pull nothing either
    await a.client.syncNow();
    // Pull without pushing: a client whose push is held by the server still pulls.
    server.holdAll = true;
    const r = await a.client.syncNow();
    expect(r.complete).toBe(true);
    const rec = await a.client.get('appointments', id);
    expect(rec).toMatchObject({ version: 2, state: 'syncing' });
    expect(rec?.data).toMatchObject({ notes: ['first visit', 'bring card'], patientPhone: '+94771234567' });
  });

  it('a record deleted on the server disappears; a remove drops it without counting as a delete', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    const id2 = await a.client.create('appointments', { ...BOOKING, slotStart: '2026-12-07T11:00:00+05:30' });
    await a.client.syncNow();
    server.put('appointments', id, null);
    await a.client.syncNow();
    expect((await a.client.list('appointments')).map((r) => r.recordId)).toEqual([id2]);
    expect(await a.client.get('appointments', id)).toMatchObject({ deleted: true, version: 2 });
  });

  it.each(['CURSOR_INVALID', 'RESYNC_REQUIRED'] as const)('%s: drops records without local changes, downloads from the start, keeps the outbox', async (code) => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const kept = await a.client.create('appointments', BOOKING);
    const dropped = await a.client.create('clinics', { clinicId: 'c1', name: 'Clinic 1' });
    await a.client.syncNow();
    await a.client.update('appointments', kept, { patientPhone: '+9477' });
    server.holdAll = true; // the edit stays on its way
    await a.client.syncNow();
    server.records.delete('clinics/' + dropped); // gone from the feed (no longer readable, or a compacted tombstone)
    server.invalidateCursorOnce(code);
    const r = await a.client.syncNow();
    expect(r.complete, a.client.status().lastError).toBe(true);
    expect(await a.client.get('clinics', dropped)).toBeUndefined();
    expect(await a.client.get('appointments', kept)).toMatchObject({ data: { patientPhone: '+9477' }, state: 'syncing' });
    expect(server.requests.filter((q) => q.startsWith('GET /v1/sync/pull?limit=500') && !q.includes('cursor'))).toHaveLength(2);
    server.releaseHeld();
    await a.client.syncNow();
    expect(await a.client.get('appointments', kept)).toMatchObject({ state: 'synced', version: 2 });
  });

  it('pulls page after page until caught up', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server, { pageSize: 2 });
    for (let i = 0; i < 5; i++) server.put('clinics', `00000000-0000-4000-8000-00000000000${i}`, { clinicId: 'c' + i, name: 'C' + i });
    const r = await a.client.syncNow();
    expect(r.pulled).toBe(5);
    expect(server.requests.filter((q) => q.startsWith('GET /v1/sync/pull'))).toHaveLength(3);
    expect(await a.client.list('clinics')).toHaveLength(5);
  });
});

describe('answers that are not applied', () => {
  it('a booking of a full slot is rolled back, stays listed struck out with a plain notice until dismissed', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const b = await Device.enrolled(server);
    await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    const mine = await b.client.create('appointments', { ...BOOKING, patientName: 'Kasun Silva' });
    const r = await b.client.syncNow();
    expect(r).toMatchObject({ complete: true, rejected: 1 });
    const rec = await b.client.get('appointments', mine);
    expect(rec).toMatchObject({ deleted: true, state: 'rejected', version: 0, data: { patientName: 'Kasun Silva' } });
    expect(rec?.notice).toMatchObject({ kind: 'rejected', code: 'CAPACITY_EXCEEDED', message: SLOT_FULL });
    expect(b.client.status()).toMatchObject({ rejected: 1, pending: 0 });
    const listed = await b.client.list('appointments');
    expect(listed.map((x) => [x.data['patientName'], x.state])).toEqual(
      expect.arrayContaining([['Nimali Perera', 'synced'], ['Kasun Silva', 'rejected']]),
    );
    const [n] = await b.client.notices();
    await b.client.dismissNotice(n!.id);
    expect(await b.client.get('appointments', mine)).toBeUndefined();
    expect(await b.client.list('appointments')).toHaveLength(1);
    expect(b.client.status().rejected).toBe(0);
    await b.reopen();
    expect(await b.client.notices()).toEqual([]);
  });

  it('a stale change parked by the server shows the server record, waiting for review', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    server.put('appointments', id, { ...BOOKING, status: 'cancelled' });
    await a.client.syncNow();
    await a.client.update('appointments', id, { patientPhone: '+94770000000' });
    server.put('appointments', id, { ...BOOKING, status: 'cancelled' }); // v3: a's update (on v2) is now stale → parked
    const r = await a.client.syncNow();
    expect(r.conflicts).toBe(1);
    const rec = await a.client.get('appointments', id);
    expect(rec).toMatchObject({ state: 'conflict', version: 3, data: { status: 'cancelled' } });
    expect(rec?.data['patientPhone']).toBeUndefined();
    expect(rec?.notice?.message).toBe("Your change to the booking for Nimali Perera at 10:00 on 7 Dec is waiting for a supervisor's review.");
  });

  it('a change the server refuses (INVALID_TRANSITION) shows the server state with the reason', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    await a.client.update('appointments', id, { status: 'checked_in' });
    // Another device cancelled at the same version (the fake decides against the current record).
    const cur = server.get('appointments', id)!;
    server.records.set('appointments/' + id, { ...cur, data: { ...cur.data, status: 'cancelled' } });
    const r = await a.client.syncNow();
    expect(r.rejected).toBe(1);
    const rec = await a.client.get('appointments', id);
    expect(rec).toMatchObject({ state: 'rejected', deleted: false, version: 1 });
    expect(rec?.data['status']).toBe('booked'); // rolled back to what the server last confirmed
    expect(rec?.notice?.code).toBe('INVALID_TRANSITION');
    expect(rec?.notice?.message).toMatch(/^Your change to the booking for Nimali Perera at 10:00 on 7 Dec could not be kept: the status cannot go back/);
    await a.client.dismissNotice(rec!.notice!.id);
    expect((await a.client.get('appointments', id))?.state).toBe('synced');
  });

  it('held changes stay in the outbox until the outcomes feed decides them', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const other = await Device.enrolled(server);
    await other.client.create('appointments', BOOKING);
    await other.client.syncNow();
    server.holdAll = true;
    const ok = await a.client.create('appointments', { ...BOOKING, slotStart: '2026-12-07T11:00:00+05:30' });
    const full = await a.client.create('appointments', { ...BOOKING, patientName: 'Kasun Silva' });
    await a.client.syncNow();
    expect(await a.client.get('appointments', ok)).toMatchObject({ state: 'syncing' });
    expect(a.client.status().pending).toBe(2);
    // an edit of a held record waits for its outcome
    await a.client.update('appointments', ok, { patientPhone: '+9471' });
    await a.client.syncNow();
    expect(server.pushBodies.map((b) => (JSON.parse(b) as { mutations: unknown[] }).mutations.length)).toEqual([1, 2]);
    server.releaseHeld();
    const r = await a.client.syncNow();
    expect(r).toMatchObject({ complete: true, rejected: 1 });
    expect(await a.client.get('appointments', ok)).toMatchObject({ state: 'synced', version: 2, data: { patientPhone: '+9471' } });
    const refused = await a.client.get('appointments', full);
    expect(refused).toMatchObject({ state: 'rejected', deleted: true });
    expect(refused?.notice?.message).toBe(SLOT_FULL);
    expect(a.client.status()).toMatchObject({ pending: 0, rejected: 1 });
  });

  it('a conflict keeps the server record, waits for the supervisor, and the resolution comes as an outcome', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    await a.client.update('appointments', id, { patientPhone: '+94771234567' });
    server.put('appointments', id, { ...BOOKING, status: 'booked', patientPhone: '+94770000000' });
    const r = await a.client.syncNow();
    expect(r.conflicts).toBe(1);
    expect(a.client.status()).toMatchObject({ conflicts: 1, pending: 0 });
    expect(await a.client.get('appointments', id)).toMatchObject({ state: 'conflict', version: 2, data: { patientPhone: '+94770000000' } });
    const conflictId = [...server.parked.values()].find((p) => p.kind === 'conflict')!.conflictId;
    // no outcome yet: the conflict stays
    await a.client.syncNow();
    expect((await a.client.get('appointments', id))?.state).toBe('conflict');
    server.resolve(conflictId, 'takeClient');
    await a.client.syncNow();
    const rec = await a.client.get('appointments', id);
    expect(rec).toMatchObject({ state: 'synced', version: 3, data: { patientPhone: '+94771234567' } });
    expect(a.client.status()).toMatchObject({ conflicts: 0, pending: 0 });
    const notices = await a.client.notices();
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ kind: 'resolved', message: 'A supervisor reviewed your change to the booking for Nimali Perera at 10:00 on 7 Dec: kept yours.' });
  });

  it("a supervisor keeping the clinic's version is told in plain words", async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    await a.client.update('appointments', id, { patientPhone: '+94771234567' });
    server.put('appointments', id, { ...BOOKING, status: 'booked', patientPhone: '+94770000000' });
    await a.client.syncNow();
    server.resolve([...server.parked.values()].find((p) => p.kind === 'conflict')!.conflictId, 'keepServer');
    await a.client.syncNow();
    expect(await a.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 3, data: { patientPhone: '+94770000000' } });
    expect((await a.client.notices())[0]?.message).toMatch(/: kept the clinic's version\.$/);
  });
});

describe('listeners, tabs and auto sync', () => {
  it('subscribe fires on writes and syncs, and in another tab of the same database', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const tab2 = await WebClient.open({ baseUrl: 'https://sync.test', dbName: 'civicsync-test', fetch: server.fetch, indexedDB: d.idb, IDBKeyRange });
    expect(tab2.enrollment()).toEqual(d.client.enrollment());
    let here = 0;
    let there = 0;
    const off = d.client.subscribe(() => here++);
    tab2.subscribe(() => there++);
    const id = await d.client.create('appointments', BOOKING);
    expect(here).toBeGreaterThan(0);
    await waitFor(() => there > 0 && tab2.status().pending === 1);
    expect((await tab2.get('appointments', id))?.state).toBe('pending');
    // the other tab syncs; both see it synced
    await tab2.syncNow();
    expect((await d.client.get('appointments', id))?.state).toBe('synced');
    await waitFor(() => d.client.status().pending === 0 && d.client.status().lastSyncAt !== undefined);
    off();
    const before = here;
    await d.client.update('appointments', id, { patientPhone: '+94' });
    expect(here).toBe(before);
    tab2.close();
  });

  it('two syncs at once run one after the other (the second includes writes made meanwhile)', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    await d.client.create('appointments', BOOKING);
    const p1 = d.client.syncNow();
    const p2 = d.client.syncNow();
    const p3 = d.client.syncNow();
    expect(p3).toBe(p2);
    await Promise.all([p1, p2]);
    expect(server.pushBodies).toHaveLength(1);
    expect(d.client.status().pending).toBe(0);
  });

  it('auto sync: a write while online is synced within a moment; failures back off with jitter', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server, { writeDebounceMs: 20, healthyIntervalMs: 60_000, backoffBaseMs: 5_000 });
    d.client.startAutoSync();
    await waitFor(() => d.client.status().lastSyncAt !== undefined);
    const id = await d.client.create('appointments', BOOKING);
    await waitFor(async () => (await d.client.get('appointments', id))?.state === 'synced');
    server.offlineRequests = 1000;
    await d.client.update('appointments', id, { patientPhone: '+94' });
    await waitFor(() => d.client.status().phase === 'waiting');
    const s = d.client.status();
    expect(s.online).toBe(false);
    const wait = Date.parse(s.nextAttemptAt!) - d.clock;
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(wait).toBeLessThanOrEqual(5_000);
    d.client.stopAutoSync();
    expect(d.client.status().phase).toBe('idle');
    d.client.close();
  });

  it('the supervisor probe: canSupervise is true when the inbox answers', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    expect(await d.client.server.canSupervise()).toBe(true);
    expect(await d.client.server.canSupervise()).toBe(true);
    expect(server.requests.filter((r) => r.startsWith('GET /v1/inbox'))).toHaveLength(1);
  });
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('server calls', () => {
  it('resolve sends one Idempotency-Key per call and the same key on its retry', async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const id = await a.client.create('appointments', BOOKING);
    await a.client.syncNow();
    await a.client.update('appointments', id, { patientPhone: '+94771234567' });
    server.put('appointments', id, { ...BOOKING, status: 'booked', patientPhone: '+94770000000' });
    await a.client.syncNow();
    const [item] = (await a.client.server.inbox({ status: 'open' })).filter((i) => i.kind === 'conflict');
    server.loseNextResponse(`/v1/inbox/${item!.id}/resolve`);
    await a.client.server.resolve(item!.id, { resolution: 'takeClient', comment: 'confirmed by phone' });
    expect(server.resolveKeys).toHaveLength(2);
    expect(server.resolveKeys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.resolveKeys[1]).toBe(server.resolveKeys[0]);
    await a.client.syncNow();
    expect(await a.client.get('appointments', id)).toMatchObject({ state: 'synced', data: { patientPhone: '+94771234567' } });
  });

  it('stats passes the server JSON through; canSupervise is false on 403', async () => {
    const server = new FakeServer();
    server.forbidInbox = true;
    const a = await Device.enrolled(server);
    expect(await a.client.server.stats({ since: '2026-11-01T00:00:00Z' })).toEqual({ tenantId: 'health-lk', since: '2026-11-01T00:00:00Z', devices: 2 });
    expect(await a.client.server.canSupervise()).toBe(false);
    await expect(a.client.server.inbox()).rejects.toMatchObject({ code: 'FORBIDDEN', status: 403 });
  });
});
