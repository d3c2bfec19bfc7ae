/**
 * The IndexedDB layout (Dexie 4). One database per device enrollment:
 *
 * - meta: key/value settings (enrollment, private key, token, cursors, deviceSeq, hlc, lastSyncAt,
 *   and `rev`, a counter every write transaction bumps, used to detect concurrent writers);
 * - records: each record in two layers, the server's (serverVersion, serverData) and the local
 *   view (data), the server layer with the device's unconfirmed changes on top;
 * - outbox: the signed mutations and where each stands;
 * - notices: what the user should read about refused, parked and resolved changes;
 * - collections: the collection definitions last fetched from the server.
 */
import Dexie, { type Table } from 'dexie';
import type { CollectionDefinition, Notice } from './api';
import type { Data, Mutation } from './records';

export type EntryState = 'pending' | 'sending' | 'held' | 'conflict' | 'rejected';

export interface MutationResultWire {
  readonly mutationId: string;
  readonly recordId: string;
  readonly status: 'applied' | 'merged' | 'held' | 'rejected' | 'conflict';
  readonly version?: number;
  readonly record?: ServerRecordWire;
  readonly serverRecord?: ServerRecordWire;
  readonly overriddenFields?: string[];
  readonly resolution?: string;
  readonly waitingFor?: number;
  readonly error?: { code: string; message: string; field?: string };
  readonly conflictId?: string;
  readonly conflictFields?: string[];
  readonly replayed?: boolean;
}

export interface ServerRecordWire {
  readonly collection: string;
  readonly recordId: string;
  readonly version: number;
  readonly deleted: boolean;
  readonly data?: Data;
  readonly updatedAt: string;
}

export interface RecordRow {
  collection: string;
  recordId: string;
  /** 0 while the server has never confirmed the record. */
  serverVersion: number;
  /** null when unconfirmed or deleted on the server. */
  serverData: Data | null;
  /** What the user sees; null when deleted locally or on the server. */
  data: Data | null;
  /** 1 while the record has local changes the server has not confirmed (an index cannot hold booleans). */
  dirty: 0 | 1;
  updatedAt: string;
}

export interface OutboxRow {
  mutationId: string;
  deviceSeq: number;
  collection: string;
  recordId: string;
  state: EntryState;
  /** The signed mutation. */
  mutation: Mutation;
  /** Its JSON text, exactly as sent on every attempt. */
  wire: string;
  result?: MutationResultWire;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

export interface NoticeRow extends Notice {
  readonly mutationId?: string;
  /** For a refused create: the data that was refused, shown struck out until the notice is dismissed. */
  readonly refusedData?: Data;
}

export interface MetaRow {
  key: string;
  value: unknown;
}

export class SyncDb extends Dexie {
  meta!: Table<MetaRow, string>;
  records!: Table<RecordRow, [string, string]>;
  outbox!: Table<OutboxRow, string>;
  notices!: Table<NoticeRow, string>;
  collections!: Table<CollectionDefinition, string>;

  constructor(name: string, indexedDB?: IDBFactory, keyRange?: typeof IDBKeyRange) {
    super(name, {
      ...(indexedDB ? { indexedDB } : {}),
      ...(keyRange ? { IDBKeyRange: keyRange } : {}),
      chromeTransactionDurability: 'strict',
      cache: 'disabled',
    });
    this.version(1).stores({
      meta: 'key',
      records: '[collection+recordId], collection, dirty',
      outbox: 'mutationId, deviceSeq, state, [collection+recordId]',
      notices: 'id, [collection+recordId], mutationId, createdAt',
      collections: 'name',
    });
  }
}
