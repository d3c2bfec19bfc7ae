/// <reference path="./node-shim.d.ts" />
/**
 * Randomised: two devices write offline and sync through a faulty network (requests that never
 * arrive, answers lost after the server acted). Afterwards every change has been decided once,
 * every device numbered its mutations without gaps, and every device shows what the server holds.
 * The seed is printed on failure; CIVICSYNC_TEST_SEED replays one.
 */
import { describe, expect, it } from 'vitest';
import { CivicSyncError } from '../../src/sync/api';
import { FakeServer, type WireMutation } from './fake-server';
import { Device } from './helpers';

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function run(seed: number): Promise<void> {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const server = new FakeServer();
  const devices = [await Device.enrolled(server, { batchSize: 3 }), await Device.enrolled(server, { batchSize: 3 })];
  const slots = ['2026-12-07T09:00:00+05:30', '2026-12-07T09:30:00+05:30', '2026-12-07T10:00:00+05:30', '2026-12-07T10:30:00+05:30'];
  for (let step = 0; step < 60; step++) {
    const d = pick(devices);
    const r = rnd();
    try {
      if (r < 0.3) {
        await d.client.create('appointments', { patientName: 'P' + step, clinicId: 'clinic-badulla-03', slotStart: pick(slots) });
      } else if (r < 0.6) {
        const live = (await d.client.list('appointments')).filter((x) => !x.deleted);
        if (live.length > 0) await d.client.update('appointments', pick(live).recordId, rnd() < 0.5 ? { patientPhone: '+94' + step } : { notes: ['n' + step] });
      } else if (r < 0.67) {
        const live = (await d.client.list('appointments')).filter((x) => !x.deleted);
        if (live.length > 0) await d.client.remove('appointments', pick(live).recordId);
      } else {
        const fault = rnd();
        if (fault < 0.2) server.offlineRequests = 1 + Math.floor(rnd() * 3);
        else if (fault < 0.4) server.loseNextResponse('/v1/sync/push');
        await d.client.syncNow();
        server.offlineRequests = 0;
      }
    } catch (e) {
      if (!(e instanceof CivicSyncError)) throw e;
    }
  }
  // heal: sync every device until nothing is left on its way
  server.clearFaults();
  for (let round = 0; round < 6; round++) {
    for (const d of devices) {
      const r = await d.client.syncNow();
      expect(r.complete, d.client.status().lastErrorCode + ': ' + d.client.status().lastError).toBe(true);
    }
  }
  for (const d of devices) {
    expect(d.client.status().pending).toBe(0);
    const id = d.client.enrollment()!.deviceId;
    // every number 1..n was sent, none skipped
    const seqs = new Set<number>();
    for (const body of server.pushBodies) {
      for (const m of (JSON.parse(body) as { mutations: WireMutation[] }).mutations) if (m.hlc.endsWith(id)) seqs.add(m.deviceSeq);
    }
    const max = Math.max(0, ...seqs);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: max }, (_, i) => i + 1));
    expect(server.device(id)!.progress).toBe(max);
    // the local view equals the server's record for every record it shows as synced or in review
    for (const rec of await d.client.list('appointments')) {
      const s = server.get('appointments', rec.recordId);
      if (rec.state === 'rejected' && rec.deleted && rec.version === 0) {
        expect(s).toBeUndefined();
        continue;
      }
      expect(s, rec.recordId).toBeDefined();
      expect(rec.version).toBe(s!.version);
      if (!s!.deleted) expect(rec.data).toEqual(s!.data);
    }
    for (const s of server.records.values()) {
      if (s.deleted) continue;
      expect(await d.client.get('appointments', s.recordId), 'missing ' + s.recordId).toMatchObject({ data: s.data, version: s.version });
    }
  }
}

describe('randomised sync through a faulty network', () => {
  const fixed = process.env['CIVICSYNC_TEST_SEED'];
  const seeds = fixed ? [Number(fixed)] : [1, 2, 3, 20261122];
  for (const seed of seeds) {
    it(`devices converge with the server and every change is decided once (seed ${seed})`, async () => {
      try {
        await run(seed);
      } catch (e) {
        console.error(`convergence failed with seed ${seed}; replay with CIVICSYNC_TEST_SEED=${seed}`);
        throw e;
      }
    }, 60_000);
  }
});
