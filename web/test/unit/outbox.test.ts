import { describe, expect, it } from 'vitest';
import { CivicSyncError } from '../../src/sync/api';
import { mutationSigningInput, verifyText } from '../../src/sync/signing';
import { FakeServer, TENANT, type WireMutation } from './fake-server';
import { BOOKING, Device } from './helpers';
import { withIdsOf } from '../../src/sync/client';

/** The mutations of every push the server received, in order. */
function pushed(server: FakeServer): WireMutation[] {
  return server.pushBodies.flatMap((b) => (JSON.parse(b) as { mutations: WireMutation[] }).mutations);
}

async function outbox(d: Device) {
  // test-only peek into the outbox table
  const db = (d.client as unknown as { db: { outbox: { toArray(): Promise<{ mutationId: string; deviceSeq: number; state: string; mutation: WireMutation; wire: string; attempts: number }[]> } } }).db;
  return (await db.outbox.toArray()).sort((a, b) => a.deviceSeq - b.deviceSeq);
}

async function verifies(d: Device, m: WireMutation): Promise<boolean> {
  const dev = d.server.device(d.client.enrollment()!.deviceId)!;
  const { signature, ...content } = m;
  return verifyText(dev.publicKey, mutationSigningInput(TENANT, dev.deviceId, content), signature!);
}

describe('the outbox', () => {
  it('a write commits the record and a signed outbox entry numbered when written', async () => {
    const d = await Device.enrolled(new FakeServer());
    const id = await d.client.create('appointments', BOOKING);
    const [e, ...rest] = await outbox(d);
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ deviceSeq: 1, state: 'pending', attempts: 0 });
    expect(e!.mutation).toMatchObject({ op: 'create', recordId: id, baseVersion: 0, data: BOOKING });
    expect(e!.mutation.hlc).toMatch(new RegExp('^[0-9]{15}-[0-9]{5}-' + d.client.enrollment()!.deviceId + '$'));
    expect(e!.wire).toBe(JSON.stringify(e!.mutation));
    expect(await verifies(d, e!.mutation)).toBe(true);
    const rec = await d.client.get('appointments', id);
    expect(rec).toMatchObject({ state: 'pending', version: 0, deleted: false, data: { ...BOOKING, status: 'booked' } });
  });

  it('survives a reload: the record, the entry and the key are still there and sync', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    await d.reopen();
    expect(d.client.enrollment()).toMatchObject({ tenantId: TENANT, deviceName: 'test tablet' });
    expect(d.client.status().pending).toBe(1);
    expect((await d.client.get('appointments', id))?.state).toBe('pending');
    expect((await d.client.syncNow()).complete).toBe(true);
    expect((await d.client.get('appointments', id))?.state).toBe('synced');
    await d.client.update('appointments', id, { patientPhone: '+94770000000' });
    expect((await outbox(d))[0]!.deviceSeq).toBe(2);
  });

  it('refuses a write that breaks the schema, and writes nothing', async () => {
    const d = await Device.enrolled(new FakeServer());
    const err = await d.client.create('appointments', { ...BOOKING, slotStart: 'tomorrow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CivicSyncError);
    expect(err).toMatchObject({ code: 'VALIDATION_FAILED', field: '/slotStart' });
    await expect(d.client.create('appointments', { ...BOOKING, extra: 1 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: '/extra' });
    await expect(d.client.create('nope', BOOKING)).rejects.toMatchObject({ code: 'UNKNOWN_COLLECTION' });
    expect(await outbox(d)).toEqual([]);
    expect(await d.client.list('appointments')).toEqual([]);
    expect(d.client.validate('appointments', { ...BOOKING, status: 'lost' })).toEqual([{ field: '/status', message: expect.any(String) }]);
  });

  it('refuses a status move backwards or removing it (INVALID_TRANSITION), and allows several moves at once', async () => {
    const d = await Device.enrolled(new FakeServer());
    const id = await d.client.create('appointments', BOOKING);
    await d.client.update('appointments', id, { status: 'completed' }); // booked → checked_in → completed
    await expect(d.client.update('appointments', id, { status: 'booked' })).rejects.toMatchObject({ code: 'INVALID_TRANSITION', field: '/status' });
    await expect(d.client.update('appointments', id, { status: null })).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
    expect((await d.client.get('appointments', id))?.data['status']).toBe('completed');
  });

  it('writes before enrollment are refused with NOT_ENROLLED', async () => {
    const d = new Device(new FakeServer());
    await d.open();
    await expect(d.client.create('appointments', BOOKING)).rejects.toMatchObject({ code: 'NOT_ENROLLED' });
    await expect(d.client.syncNow()).rejects.toMatchObject({ code: 'NOT_ENROLLED' });
    await expect(d.client.enroll('BAD', 'x')).rejects.toMatchObject({ code: 'ENROLLMENT_CODE_INVALID', status: 403 });
    expect(d.client.enrollment()).toBeUndefined();
  });
});

describe('folding edits into a change not yet sent', () => {
  it('edits of a new record fold into its create: one mutation, same id and number, signed again', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    const [before] = await outbox(d);
    await d.client.update('appointments', id, { patientPhone: '+94771234567' });
    await d.client.update('appointments', id, { notes: ['first visit'], patientPhone: null });
    const [after, ...rest] = await outbox(d);
    expect(rest).toEqual([]);
    expect(after!.mutationId).toBe(before!.mutationId);
    expect(after!.deviceSeq).toBe(1);
    expect(after!.mutation.data).toEqual({ ...BOOKING, notes: ['first visit'] });
    expect(after!.mutation.hlc > before!.mutation.hlc).toBe(true);
    expect(after!.mutation.signature).not.toBe(before!.mutation.signature);
    expect(await verifies(d, after!.mutation)).toBe(true);
    await d.client.syncNow();
    expect(pushed(server)).toHaveLength(1);
    expect(server.get('appointments', id)?.data).toEqual({ ...BOOKING, status: 'booked', notes: ['first visit'] });
  });

  it('status moves fold into one move, which the server allows', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    await d.client.syncNow();
    await d.client.update('appointments', id, { status: 'checked_in' });
    await d.client.update('appointments', id, { status: 'completed' });
    const [e] = await outbox(d);
    expect(e!.mutation).toMatchObject({ op: 'update', baseVersion: 1, data: { status: 'completed' } });
    await d.client.syncNow();
    expect(server.get('appointments', id)?.data?.['status']).toBe('completed');
    expect((await d.client.get('appointments', id))).toMatchObject({ state: 'synced', version: 2 });
  });

  it('an update then a delete fold into one delete on the same base', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    await d.client.syncNow();
    await d.client.update('appointments', id, { patientPhone: '+9477' });
    await d.client.remove('appointments', id);
    const entries = await outbox(d);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.mutation).toMatchObject({ op: 'delete', baseVersion: 1 });
    expect(entries[0]!.mutation.data).toBeUndefined();
    expect((await d.client.get('appointments', id))).toMatchObject({ deleted: true, state: 'pending' });
    await d.client.syncNow();
    expect(server.get('appointments', id)?.deleted).toBe(true);
    expect(await d.client.list('appointments')).toEqual([]);
  });

  it('a create deleted before it was sent vanishes and gives its number back: no deviceSeq gap', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const gone = await d.client.create('appointments', BOOKING);
    await d.client.remove('appointments', gone);
    expect(await outbox(d)).toEqual([]);
    expect(await d.client.get('appointments', gone)).toBeUndefined();
    await d.client.create('appointments', { ...BOOKING, slotStart: '2026-12-07T11:00:00+05:30' });
    expect((await outbox(d))[0]!.deviceSeq).toBe(1);
    await d.client.syncNow();
    expect(server.get('appointments', gone)).toBeUndefined();
  });

  it('a create that is not the newest change is deleted after it is sent, keeping every number', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const a = await d.client.create('appointments', BOOKING);
    await d.client.create('appointments', { ...BOOKING, slotStart: '2026-12-07T11:00:00+05:30' });
    await d.client.remove('appointments', a);
    expect((await outbox(d)).map((e) => e.deviceSeq)).toEqual([1, 2]);
    const r = await d.client.syncNow();
    expect(r.complete).toBe(true);
    expect(pushed(server).map((m) => [m.deviceSeq, m.op])).toEqual([[1, 'create'], [2, 'create'], [3, 'delete']]);
    expect(server.get('appointments', a)?.deleted).toBe(true);
    expect(d.client.status().pending).toBe(0);
  });
});

describe('retries', () => {
  it('retry after a lost response resends the same signed mutation', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    server.loseNextResponse('/v1/sync/push');
    const first = await d.client.syncNow();
    expect(first.complete).toBe(false);
    expect(d.client.status()).toMatchObject({ online: false, pending: 1, lastErrorCode: 'OFFLINE' });
    expect(d.client.status().lastError).toMatch(/kept on this device/);
    expect((await d.client.get('appointments', id))?.state).toBe('syncing');
    // an edit while the create is on its way waits and is not folded into the sent create
    await d.client.update('appointments', id, { patientPhone: '+94771234567' });
    expect((await outbox(d)).map((e) => e.state)).toEqual(['sending']);
    const second = await d.client.syncNow();
    expect(second.complete).toBe(true);
    expect(server.pushBodies[1]!.startsWith(server.pushBodies[0]!.slice(0, -2))).toBe(true);
    const [m1, m2, m3] = pushed(server);
    expect(JSON.stringify(m2)).toBe(JSON.stringify(m1)); // byte-identical, same mutationId
    expect(m3).toMatchObject({ op: 'update', baseVersion: 1, deviceSeq: 2, data: { patientPhone: '+94771234567' } });
    expect(server.get('appointments', id)).toMatchObject({ version: 2, data: { patientPhone: '+94771234567' } });
    expect(await d.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 2 });
    expect(d.client.status()).toMatchObject({ online: true, pending: 0 });
    expect(d.client.status().lastError).toBeUndefined();
  });

  it('offline: nothing reaches the server, the entry goes again unchanged later', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    await d.client.create('appointments', BOOKING);
    const [before] = await outbox(d);
    server.offlineRequests = 100;
    const r = await d.client.syncNow();
    expect(r).toMatchObject({ complete: false, pushed: 0 });
    expect(d.client.status().online).toBe(false);
    server.offlineRequests = 0;
    await d.reopen(); // even across a reload
    expect((await outbox(d))[0]!.wire).toBe(before!.wire);
    expect((await d.client.syncNow()).complete).toBe(true);
    expect(server.pushBodies).toEqual([`{"mutations":[${before!.wire}]}`]);
  });

  it('per-record order: changes of a record go in the order made, each on the version the last one gave', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server, { batchSize: 1 });
    const id = await d.client.create('appointments', BOOKING);
    const other = await d.client.create('clinics', { clinicId: 'clinic-badulla-03', name: 'Badulla 3' });
    server.loseNextResponse('/v1/sync/push');
    await d.client.syncNow();
    await d.client.update('appointments', id, { status: 'checked_in' });
    await d.client.update('appointments', id, { status: 'completed', notes: ['done'] });
    await d.client.update('clinics', other, { district: 'Badulla' });
    expect((await d.client.syncNow()).complete).toBe(true);
    const seqs = pushed(server).map((m) => m.deviceSeq);
    expect(new Set(seqs)).toEqual(new Set([1, 2, 3])); // the clinic's edit folded into its unsent create
    const forRecord = pushed(server).filter((m) => m.recordId === id);
    expect(forRecord.map((m) => [m.op, m.baseVersion])).toEqual([['create', 0], ['create', 0], ['update', 1]]);
    expect(server.get('appointments', id)?.data).toMatchObject({ status: 'completed', notes: ['done'] });
    expect(server.get('clinics', other)?.data).toMatchObject({ district: 'Badulla' });
    expect(pushed(server).filter((m) => m.recordId === other)).toHaveLength(1);
  });

  it('renews an expired token with a signed challenge and goes on', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const id = await d.client.create('appointments', BOOKING);
    const deviceId = d.client.enrollment()!.deviceId;
    const oldToken = server.device(deviceId)!.token;
    server.expireToken(deviceId);
    const r = await d.client.syncNow();
    expect(r.complete).toBe(true);
    expect(server.device(deviceId)!.token).not.toBe(oldToken);
    expect(server.requests.filter((x) => x.includes('/v1/devices/token'))).toHaveLength(1);
    expect((await d.client.get('appointments', id))?.state).toBe('synced');
    await d.reopen(); // the new token was kept
    expect((await d.client.syncNow()).complete).toBe(true);
    expect(server.requests.filter((x) => x.includes('/v1/devices/token'))).toHaveLength(1);
  });

  it('pushes a big outbox in batches, gzip-compressed', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server, { batchSize: 50 });
    for (let i = 0; i < 130; i++) {
      await d.client.create('subsidy_claims', { farmerId: 'F' + i, crop: 'paddy', season: 'maha-2026', areaHectares: 1.5 });
    }
    const r = await d.client.syncNow();
    expect(r).toMatchObject({ complete: true, pushed: 130 });
    expect(server.pushBodies).toHaveLength(3);
    expect(pushed(server).map((m) => m.deviceSeq)).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    expect((await d.client.list('subsidy_claims')).every((x) => x.state === 'synced')).toBe(true);
  });
});

describe('minimal push answers', () => {
  it('asks for results by position and reads each result back onto its mutation', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const ids = [await d.client.create('appointments', BOOKING), await d.client.create('appointments', { ...BOOKING, patientName: 'Kumari Silva', slotStart: '2026-12-07T10:30:00+05:30' })];
    expect((await d.client.syncNow()).complete).toBe(true);
    expect(server.pushPrefers).toEqual(['return=minimal']);
    for (const id of ids) expect(await d.client.get('appointments', id)).toMatchObject({ state: 'synced', version: 1 });
    expect(d.client.status().pending).toBe(0);
  });

  it('refuses an answer whose results do not line up with the push', () => {
    const batch = [{ mutationId: 'm-1', recordId: 'r-1' }, { mutationId: 'm-2', recordId: 'r-2' }];
    expect(withIdsOf([{ status: 'applied', version: 1 }, { status: 'applied', version: 1 }], batch).map((r) => r.mutationId)).toEqual(['m-1', 'm-2']);
    expect(() => withIdsOf([{ status: 'applied', version: 1 }], batch)).toThrow(/sent 2 mutations and got 1/);
    expect(() => withIdsOf([{ mutationId: 'm-2', recordId: 'r-2', status: 'applied', version: 1 }, { status: 'applied', version: 1 }], batch)).toThrow(/answers m-2, not m-1/);
  });
});
