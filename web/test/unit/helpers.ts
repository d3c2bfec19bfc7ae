import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import type { ClientOptions } from '../../src/sync/api';
import { WebClient, type Tuning } from '../../src/sync/client';
import { FakeServer } from './fake-server';

export const BOOKING = { patientName: 'Nimali Perera', clinicId: 'clinic-badulla-03', slotStart: '2026-12-07T10:00:00+05:30' };

/** A device: its own IndexedDB (an IDBFactory per device survives close/reopen like a browser profile). */
export class Device {
  readonly idb = new IDBFactory();
  client!: WebClient;
  clock = Date.parse('2026-11-22T08:00:00Z');

  constructor(
    readonly server: FakeServer,
    private readonly tuning: Partial<Tuning> = {},
    /** More client options (e.g. an EventSource for the live stream). */
    private readonly options: Partial<ClientOptions> = {},
  ) {}

  async open(): Promise<WebClient> {
    this.client = await WebClient.open(
      {
        baseUrl: 'https://sync.test',
        dbName: 'civicsync-test',
        fetch: this.server.fetch,
        indexedDB: this.idb,
        IDBKeyRange,
        now: () => (this.clock += 7),
        random: () => 0.5,
        ...this.options,
      },
      this.tuning,
    );
    return this.client;
  }

  /** Closes and opens the client again on the same IndexedDB: a page reload or browser restart. */
  async reopen(): Promise<WebClient> {
    this.client.close();
    return this.open();
  }

  static async enrolled(server: FakeServer, tuning: Partial<Tuning> = {}, options: Partial<ClientOptions> = {}): Promise<Device> {
    const d = new Device(server, tuning, options);
    await d.open();
    await d.client.enroll('GOOD-CODE', 'test tablet');
    return d;
  }
}
