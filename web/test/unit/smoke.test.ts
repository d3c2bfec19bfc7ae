import { describe, expect, it } from 'vitest';
import { FakeServer } from './fake-server';
import { BOOKING, Device } from './helpers';

describe('first flow', () => {
  it('enrolls, creates, syncs, and shows the record synced', async () => {
    const server = new FakeServer();
    const d = await Device.enrolled(server);
    const c = d.client;
    const id = await c.create('appointments', BOOKING);
    expect((await c.get('appointments', id))?.state).toBe('pending');
    expect(c.status().pending).toBe(1);
    const report = await c.syncNow();
    expect(report).toMatchObject({ pushed: 1, complete: true });
    const rec = await c.get('appointments', id);
    expect(rec).toMatchObject({ state: 'synced', version: 1, deleted: false, data: { ...BOOKING, status: 'booked' } });
    expect(c.status().pending).toBe(0);
    expect(server.get('appointments', id)?.data).toMatchObject(BOOKING);
  });
});
