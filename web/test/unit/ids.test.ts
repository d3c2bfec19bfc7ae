import { describe, expect, it } from 'vitest';
import { uuid, uuid7 } from '../../src/sync/encoding';
import { FakeServer } from './fake-server';
import { BOOKING, Device } from './helpers';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds in a version 7 id's first 48 bits. */
function millisOf(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

describe('ids', () => {
  it('uuid7 puts the milliseconds first, then the version and variant of RFC 9562', () => {
    // RFC 9562, appendix A.6: 017f22e2-79b0-7... for 0x017F22E279B0 ms.
    const id = uuid7(0x017f22e279b0);
    expect(id).toMatch(V7);
    expect(id.slice(0, 13)).toBe('017f22e2-79b0');
    expect(millisOf(uuid7(2 ** 48 - 1))).toBe(2 ** 48 - 1);
    expect(millisOf(uuid7(0))).toBe(0);
  });

  it('a later millisecond sorts later, as the server compares ids', () => {
    let ms = Date.parse('2026-12-06T10:00:00Z');
    let previous = uuid7(ms);
    for (let i = 0; i < 2000; i++) {
      ms += 1 + (i % 5);
      const next = uuid7(ms);
      expect(next > previous).toBe(true);
      previous = next;
    }
  });

  it('ids of one millisecond are distinct', () => {
    const seen = new Set(Array.from({ length: 20000 }, () => uuid7(1_780_000_000_000)));
    expect(seen.size).toBe(20000);
  });

  it('refuses milliseconds a version 7 id cannot hold', () => {
    expect(() => uuid7(-1)).toThrow(RangeError);
    expect(() => uuid7(2 ** 48)).toThrow(RangeError);
    expect(uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("new records and their mutations get time-ordered ids from the client's clock", async () => {
    const server = new FakeServer();
    const a = await Device.enrolled(server);
    const before = a.clock;
    const first = await a.client.create('appointments', BOOKING);
    const second = await a.client.create('appointments', { ...BOOKING, slotStart: '2026-12-07T11:00:00+05:30' });
    await a.client.syncNow();
    const sent = server.pushBodies.flatMap((b) => (JSON.parse(b) as { mutations: { mutationId: string; recordId: string }[] }).mutations);
    expect(sent.map((m) => m.recordId)).toEqual([first, second]);
    for (const id of [first, second, ...sent.map((m) => m.mutationId)]) {
      expect(id).toMatch(V7);
      expect(millisOf(id)).toBeGreaterThan(before);
      expect(millisOf(id)).toBeLessThanOrEqual(a.clock);
    }
    expect(first < second).toBe(true);
  });
});
