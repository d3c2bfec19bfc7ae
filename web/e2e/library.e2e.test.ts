/// <reference path="../test/unit/node-shim.d.ts" />
/**
 * The sync library (no browser) against the real server that e2e/global-setup.ts starts with
 * --demo (tenant demo, user demo-nurse on org unit uva): part of the browser-test run, which CI
 * never skips.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, inject, it } from 'vitest';
import { WebClient } from '../src/sync/client';

const cfg = inject('e2e');
const URL_ = cfg.skip ? undefined : cfg.baseUrl;
const ADMIN = cfg.adminToken;

async function code(): Promise<string> {
  const r = await fetch(`${URL_}/v1/admin/tenants/demo/enrollment-codes`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId: 'demo-nurse', maxUses: 10 }),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { code: string }).code;
}

async function device(name: string, enrollmentCode: string, f: typeof fetch = fetch): Promise<WebClient> {
  const c = await WebClient.open({ baseUrl: URL_!, dbName: name, fetch: f, indexedDB: new IDBFactory(), IDBKeyRange });
  await c.enroll(enrollmentCode, name);
  return c;
}

describe.skipIf(!URL_)('against a real server', () => {
  it('books, syncs between two devices, and refuses a second booking of a full slot', async () => {
    const enrollmentCode = await code();
    const a = await device('tablet-a', enrollmentCode);
    const b = await device('tablet-b', enrollmentCode);
    const minute = String(Math.floor(Math.random() * 60)).padStart(2, '0');
    const day = String(1 + Math.floor(Math.random() * 28)).padStart(2, '0');
    const slotStart = `2027-03-${day}T10:${minute}:00+05:30`;
    const booking = { patientName: 'Nimali Perera', clinicId: 'clinic-badulla-03', slotStart };

    const idA = await a.create('appointments', booking);
    const idB = await b.create('appointments', { ...booking, patientName: 'Kasun Silva' });
    const ra = await a.syncNow();
    expect(ra.complete, a.status().lastError).toBe(true);
    expect((await a.get('appointments', idA))?.state).toBe('synced');

    const rb = await b.syncNow();
    expect(rb).toMatchObject({ complete: true, rejected: 1 });
    const refused = await b.get('appointments', idB);
    expect(refused).toMatchObject({ state: 'rejected', deleted: true });
    expect(refused?.notice?.code).toBe('CAPACITY_EXCEEDED');
    expect(refused?.notice?.message).toBe(`Your booking for 10:${minute} could not be kept: that slot is full. Please choose another time.`);
    // b pulled a's booking
    expect((await b.get('appointments', idA))?.data).toMatchObject(booking);

    // An update and a check-in travel too, and a renewed token keeps working.
    await b.update('appointments', idA, { patientPhone: '+94771234567', status: 'checked_in' });
    await b.renewToken();
    expect((await b.syncNow()).complete).toBe(true);
    await a.syncNow();
    expect((await a.get('appointments', idA))?.data).toMatchObject({ patientPhone: '+94771234567', status: 'checked_in' });
    expect((await a.get('appointments', idA))?.version).toBe(2);
    expect(await a.server.canSupervise()).toBe(true);
    const inbox = await a.server.inbox({ status: 'open', limit: 5 });
    expect(Array.isArray(inbox)).toBe(true);
    a.close();
    b.close();
  });

  it('a push whose answer was lost is sent again byte for byte and replayed', async () => {
    let lose = true;
    const bodies: string[] = [];
    const lossy: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      if (String(input).includes('/v1/sync/push')) {
        bodies.push(typeof init?.body === 'string' ? init.body : await new Response(init?.body as BodyInit).text());
        if (lose) {
          lose = false;
          throw new TypeError('connection reset');
        }
      }
      return r;
    };
    const c = await device('tablet-c', await code(), lossy);
    const id = await c.create('appointments', {
      patientName: 'Lost Answer',
      clinicId: 'clinic-bandarawela-01',
      slotStart: `2027-04-0${1 + Math.floor(Math.random() * 9)}T0${Math.floor(Math.random() * 9)}:${String(Math.floor(Math.random() * 60)).padStart(2, '0')}:00+05:30`,
    });
    const first = await c.syncNow();
    expect(first.complete).toBe(false);
    expect(c.status().online).toBe(false);
    expect((await c.get('appointments', id))?.state).toBe('syncing');
    const second = await c.syncNow();
    expect(second.complete).toBe(true);
    expect(bodies.length).toBe(2);
    expect(bodies[1]).toBe(bodies[0]);
    expect((await c.get('appointments', id))).toMatchObject({ state: 'synced', version: 1 });
    c.close();
  });

  it('a big push goes gzip-compressed; a conflict is resolved by a supervisor and the outcome reaches the device', async () => {
    const enrollmentCode = await code();
    const a = await device('tablet-d', enrollmentCode);
    const b = await device('tablet-e', enrollmentCode);
    const base = Math.floor(Math.random() * 1e6);
    for (let i = 0; i < 25; i++) {
      await a.create('subsidy_claims', { farmerId: `F-${base}-${i}`, crop: 'paddy', season: 'maha-2027', areaHectares: 1.25, amountRequested: 5000 });
    }
    const r = await a.syncNow();
    expect(r, a.status().lastError).toMatchObject({ complete: true, pushed: 25, rejected: 0 });
    const [claim] = (await a.list('subsidy_claims')).filter((c) => c.data['farmerId'] === `F-${base}-0`);
    await b.syncNow();
    await a.update('subsidy_claims', claim!.recordId, { amountRequested: 6000 });
    await b.update('subsidy_claims', claim!.recordId, { amountRequested: 7000 });
    expect((await a.syncNow()).complete).toBe(true);
    const rb = await b.syncNow();
    expect(rb.conflicts).toBe(1);
    const parked = await b.get('subsidy_claims', claim!.recordId);
    expect(parked).toMatchObject({ state: 'conflict', data: { amountRequested: 6000 } });
    expect(parked?.notice?.message).toMatch(/waiting for a supervisor's review/);
    const items = await a.server.inbox({ status: 'open', kind: 'conflict', collection: 'subsidy_claims' });
    const item = items.find((i) => i.recordId === claim!.recordId)!;
    await a.server.resolve(item.id, { resolution: 'takeClient', comment: 'farmer confirmed 7000' });
    await b.syncNow();
    const settled = await b.get('subsidy_claims', claim!.recordId);
    expect(settled).toMatchObject({ state: 'synced', data: { amountRequested: 7000 } });
    expect((await b.notices())[0]?.message).toMatch(/kept yours\.$/);
    a.close();
    b.close();
  });
});
