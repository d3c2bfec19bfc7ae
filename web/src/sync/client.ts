/**
 * The web client: local writes with a signed outbox in IndexedDB, and sync (push, pull, outcomes)
 * with the semantics of the Java SDK (client/src/main/java/org/civicsync/client/CivicSyncClient.java):
 *
 * - a change gets its mutationId and deviceSeq when it is written, is signed then, and is stored
 *   with the exact JSON text that every push (first or retry) sends;
 * - entries are marked 'sending' in a committed transaction before a push goes out; after a lost
 *   answer they stay 'sending' and go again unchanged (the server replays its first answer);
 * - an edit of a record whose entry was never sent is folded into that entry (re-signed); an edit
 *   while an entry of the record is on its way waits in the record and becomes an entry once the
 *   answer gives it a base version;
 * - the local view is the server layer with the changes on their way replayed on top (rebase), on
 *   every push answer, pull page and outcome.
 *
 * Auto sync also holds the live stream (GET /v1/sync/stream, Server-Sent Events) open while
 * online: a `changes` event starts a debounced sync, the timer then polls only as a safety net,
 * and a broken stream falls back to the timer and is reopened here with backoff (never by
 * EventSource itself, which would go on with an expired token).
 *
 * WebCrypto signing is asynchronous and an IndexedDB transaction cannot wait for it, so a write
 * reads in one transaction, signs, and commits in a second one only if no other writer (another
 * tab, the service worker, a sync) committed in between (the `rev` counter); otherwise it starts
 * again.
 */
import Dexie from 'dexie';
import {
  CivicSyncError,
  type CivicSyncWeb,
  type ClientOptions,
  type CollectionDefinition,
  type Enrollment,
  type InboxItem,
  type LocalRecord,
  type Notice,
  type RecordState,
  type ServerCalls,
  type Stats,
  type SyncReport,
  type SyncStatus,
  type ValidationProblem,
} from './api';
import { BUILT_IN_COLLECTIONS } from './builtins';
import { SyncDb, type EntryState, type MutationResultWire, type NoticeRow, type OutboxRow, type RecordRow } from './db';
import { uuid, uuid7 } from './encoding';
import { formatHlc, parseHlc, tickHlc } from './hlc';
import { withLock } from './lock';
import { conflictMessage, rejectionMessage, resolutionMessage, syncErrorMessage } from './messages';
import {
  NO_DIFF,
  applyDiff,
  checkMonotonic,
  clone,
  diff,
  mergePatch,
  patched,
  replay,
  withDefaults,
  type Data,
  type Diff,
  type Mutation,
  type Op,
} from './records';
import { generateDeviceKeys, signMutation, signText, tokenSigningInput } from './signing';
import { OFFLINE, ServerError, Transport, isNetworkFailure } from './transport';
import { validateJson } from './validator';

const IN_FLIGHT: readonly EntryState[] = ['pending', 'sending', 'held'];

/** A record's key in maps and sets (ids never contain NUL). */
function recordKey(collection: string, recordId: string): string {
  return collection + '\u0000' + recordId;
}
const LOCK_NAME = 'civicsync-sync';
const CHANNEL_NAME = 'civicsync';

export interface Tuning {
  /** Mutations per push (default 100). */
  batchSize: number;
  /** Changes per pull page and outcomes per page (default 500). */
  pageSize: number;
  /** Auto sync: the wait between syncs while healthy (default 30 s). */
  healthyIntervalMs: number;
  /** Auto sync: backoff base and cap after failures (default 2 s and 3 min). */
  backoffBaseMs: number;
  backoffCapMs: number;
  /** Auto sync: the wait after a local write before a sync starts (default 300 ms). */
  writeDebounceMs: number;
  /** Collection definitions are fetched at the first sync and then at most this often (default 6 h). */
  collectionsMaxAgeMs: number;
  /** A token with less than this left is renewed at the start of a sync (default 1 h). */
  renewBeforeMs: number;
  /** Auto sync: the wait between syncs while the live stream is open, a safety net (default 5 min). */
  livePollIntervalMs: number;
  /** Live stream: reopening after an error backs off from this base to this cap, with jitter (default 3 s and 2 min). */
  streamBackoffBaseMs: number;
  streamBackoffCapMs: number;
  /** Live stream: one that stayed open this long before it broke starts the backoff again from the base (default 1 min). */
  streamHealthyAfterMs: number;
}

const DEFAULT_TUNING: Tuning = {
  batchSize: 100,
  pageSize: 500,
  healthyIntervalMs: 30_000,
  backoffBaseMs: 2_000,
  backoffCapMs: 180_000,
  writeDebounceMs: 300,
  collectionsMaxAgeMs: 6 * 3600_000,
  renewBeforeMs: 3600_000,
  livePollIntervalMs: 300_000,
  streamBackoffBaseMs: 3_000,
  streamBackoffCapMs: 120_000,
  streamHealthyAfterMs: 60_000,
};

/** What the library needs of an EventSource (the browser's, or a test's fake). */
interface EventSourceLike {
  addEventListener(type: string, listener: (ev: Event) => void): void;
  close(): void;
}
type EventSourceCtor = new (url: string) => EventSourceLike;

/** One opening of the live stream. */
interface LiveStream {
  readonly es: EventSourceLike;
  /** Opened again after an earlier stream of this auto-sync session: its `ready` may follow missed changes. */
  readonly reconnect: boolean;
  /** syncStarts when it was opened. */
  readonly syncsBefore: number;
  /** this.now() when the server accepted it; undefined while connecting. */
  openedAt?: number;
}

interface Credentials {
  readonly enrollment: Enrollment;
  readonly privateKey: CryptoKey;
  token: string;
  tokenExpiresAt?: string;
}

interface Counters {
  pushed: number;
  pulled: number;
  rejected: number;
  conflicts: number;
}

type MutableStatus = { -readonly [K in keyof SyncStatus]: SyncStatus[K] };

function byDeviceSeq(a: OutboxRow, b: OutboxRow): number {
  return a.deviceSeq - b.deviceSeq;
}

function toWire(m: Mutation): string {
  return JSON.stringify(m);
}

export class WebClient implements CivicSyncWeb {
  readonly server: ServerCalls;
  private readonly db: SyncDb;
  private readonly transport: Transport;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly tuning: Tuning;
  private readonly instanceId = uuid();
  private readonly listeners = new Set<() => void>();
  private channel?: BroadcastChannel;
  private creds?: Credentials;
  private defs: readonly CollectionDefinition[] = BUILT_IN_COLLECTIONS;
  private collectionsFetchedAt = 0;
  private st: MutableStatus;
  private running?: Promise<SyncReport>;
  private queued?: Promise<SyncReport>;
  private writeChain: Promise<unknown> = Promise.resolve();
  private auto = false;
  private timer?: ReturnType<typeof setTimeout>;
  /** What the pending timer is: a sync due now, the regular poll, or a retry after a failure. */
  private timerKind?: 'now' | 'poll' | 'backoff';
  private debounce?: ReturnType<typeof setTimeout>;
  private readonly eventSourceOption?: typeof EventSource | null;
  private stream?: LiveStream;
  /** The token of the last attempt to open the stream. */
  private streamToken?: string;
  private streamTimer?: ReturnType<typeof setTimeout>;
  private streamFailures = 0;
  private streamOpens = 0;
  private syncStarts = 0;
  private failures = 0;
  private retryAfterMs = 0;
  private fatal = false;
  private supervise?: Promise<boolean>;
  private closed = false;
  private readonly onOnline = () => {
    this.st.online = true;
    this.notify(false);
    if (this.auto && !this.fatal) {
      this.schedule(0, false);
      if (!this.stream) {
        this.stopStream(); // a reopen planned while the network was down waits no longer
        this.streamFailures = 0;
        this.openStream();
      }
    }
  };
  private readonly onOffline = () => {
    this.st.online = false;
    this.stopStream();
    this.notify(false);
  };

  private constructor(options: ClientOptions, tuning: Partial<Tuning>) {
    this.db = new SyncDb(options.dbName ?? 'civicsync', options.indexedDB, options.IDBKeyRange);
    const f = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
    this.transport = new Transport(options.baseUrl, f as typeof fetch);
    this.now = options.now ?? (() => Date.now());
    this.random = options.random ?? Math.random;
    this.eventSourceOption = options.eventSource;
    this.tuning = { ...DEFAULT_TUNING, ...tuning };
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    this.st = { online: nav?.onLine ?? true, phase: 'idle', pending: 0, rejected: 0, conflicts: 0 };
    this.server = this.makeServerCalls();
  }

  static async open(options: ClientOptions, tuning: Partial<Tuning> = {}): Promise<WebClient> {
    const c = new WebClient(options, tuning);
    await c.db.open();
    await c.reload();
    if (typeof BroadcastChannel === 'function') {
      c.channel = new BroadcastChannel(CHANNEL_NAME);
      c.channel.onmessage = (ev: MessageEvent) => {
        const msg = ev.data as { src?: string; db?: string } | undefined;
        if (!msg || msg.src === c.instanceId || msg.db !== c.db.name) return;
        // A tab or test may have closed this client meanwhile: nothing to refresh then.
        void c.reload().then(() => c.notify(false)).catch(() => undefined);
      };
    }
    return c;
  }

  /** Reads enrollment, definitions and status from IndexedDB (at open, and when another tab changed them). */
  private async reload(): Promise<void> {
    const [enrollment, privateKey, token, tokenExpiresAt] = await Promise.all([
      this.meta<Enrollment>('enrollment'),
      this.meta<CryptoKey>('privateKey'),
      this.meta<string>('token'),
      this.meta<string>('tokenExpiresAt'),
    ]);
    if (enrollment && privateKey && token) {
      this.creds = { enrollment, privateKey, token, tokenExpiresAt };
      this.tokenChanged(); // another tab or the service worker may have renewed it
    }
    const defs = await this.db.collections.toArray();
    if (defs.length > 0) this.defs = defs;
    await this.refreshStatus();
  }

  // ------------------------------------------------------------------ small helpers

  private async meta<T>(key: string): Promise<T | undefined> {
    return (await this.db.meta.get(key))?.value as T | undefined;
  }

  private async putMeta(key: string, value: unknown): Promise<void> {
    await this.db.meta.put({ key, value });
  }

  private async rev(): Promise<number> {
    return (await this.meta<number>('rev')) ?? 0;
  }

  private async bump(): Promise<void> {
    await this.putMeta('rev', (await this.rev()) + 1);
  }

  private iso(ms = this.now()): string {
    return new Date(ms).toISOString();
  }

  private def(collection: string): CollectionDefinition | undefined {
    return this.defs.find((d) => d.name === collection);
  }

  private requireDef(collection: string): CollectionDefinition {
    const d = this.def(collection);
    if (!d) throw new CivicSyncError('UNKNOWN_COLLECTION', `no collection '${collection}'`);
    return d;
  }

  private requireCreds(): Credentials {
    if (!this.creds) throw new CivicSyncError('NOT_ENROLLED', 'enroll this device first');
    return this.creds;
  }

  private async entriesOf(collection: string, recordId: string): Promise<OutboxRow[]> {
    const rows = await this.db.outbox.where('[collection+recordId]').equals([collection, recordId]).toArray();
    return rows.sort(byDeviceSeq);
  }

  private async inFlight(collection: string, recordId: string): Promise<OutboxRow[]> {
    return (await this.entriesOf(collection, recordId)).filter((e) => IN_FLIGHT.includes(e.state));
  }

  /** One transaction over every table, bumping `rev`. */
  private rw<T>(work: () => Promise<T>): Promise<T> {
    const t = this.db;
    return t.transaction('rw', [t.meta, t.records, t.outbox, t.notices, t.collections], async () => {
      const out = await work();
      await this.bump();
      return out;
    });
  }

  /**
   * Read, prepare outside any transaction (signing), commit only if nobody wrote meanwhile;
   * otherwise start again. Local writes of this context are also serialised among themselves.
   */
  private optimistic<R, B, T>(read: () => Promise<R>, build: (r: R) => Promise<B>, commit: (b: B, r: R) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const t = this.db;
      for (let attempt = 0; ; attempt++) {
        const [rev, r] = await t.transaction('r', [t.meta, t.records, t.outbox, t.notices], async () => {
          return [await this.rev(), await read()] as const;
        });
        const b = await build(r);
        const done = await t.transaction('rw', [t.meta, t.records, t.outbox, t.notices, t.collections], async () => {
          if ((await this.rev()) !== rev) return { ok: false as const };
          const value = await commit(b, r);
          await this.bump();
          return { ok: true as const, value };
        });
        if (done.ok) return done.value;
        if (attempt > 50) throw new CivicSyncError('BUSY', 'the local store is busy; please try again');
      }
    };
    const result = this.writeChain.then(run, run);
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  /** Makes a mutation (unsigned) with the next deviceSeq and HLC reading after those given. */
  private draft(
    seq: number,
    hlc: string | undefined,
    fields: Omit<Mutation, 'deviceSeq' | 'hlc' | 'clientTime' | 'signature' | 'mutationId'> & { mutationId?: string },
    keepSeq?: number,
  ): Mutation {
    const creds = this.requireCreds();
    const ms = this.now();
    const next = formatHlc(tickHlc(hlc ? parseHlc(hlc) : undefined, ms, creds.enrollment.deviceId));
    const m: Mutation = {
      mutationId: fields.mutationId ?? uuid7(ms),
      deviceSeq: keepSeq ?? seq,
      collection: fields.collection,
      recordId: fields.recordId,
      op: fields.op,
      baseVersion: fields.baseVersion,
      ...(fields.data !== undefined ? { data: clone(fields.data) } : {}),
      hlc: next,
      clientTime: this.iso(ms),
    };
    return m;
  }

  private async sign(m: Mutation): Promise<Mutation> {
    const c = this.requireCreds();
    return signMutation(c.privateKey, c.enrollment.tenantId, c.enrollment.deviceId, m as unknown as Record<string, unknown>) as unknown as Promise<Mutation>;
  }

  private entryRow(m: Mutation, createdAt?: string): OutboxRow {
    const now = this.iso();
    return {
      mutationId: m.mutationId,
      deviceSeq: m.deviceSeq,
      collection: m.collection,
      recordId: m.recordId,
      state: 'pending',
      mutation: m,
      wire: toWire(m),
      attempts: 0,
      createdAt: createdAt ?? now,
      updatedAt: now,
    };
  }

  // ------------------------------------------------------------------ enrollment and definitions

  enrollment(): Enrollment | undefined {
    return this.creds?.enrollment;
  }

  async enroll(code: string, deviceName: string): Promise<Enrollment> {
    if (this.creds || (await this.meta('enrollment'))) {
      throw new CivicSyncError('ALREADY_ENROLLED', 'this device is already enrolled');
    }
    const keys = await generateDeviceKeys();
    const r = await this.transport.request<{ deviceId: string; tenantId: string; userId: string; token: string; expiresAt: string }>(
      '/v1/devices/enroll',
      { body: JSON.stringify({ enrollmentCode: code, deviceName, publicKey: keys.publicKey }) },
    );
    const enrollment: Enrollment = { tenantId: r.tenantId, deviceId: r.deviceId, userId: r.userId, deviceName };
    await this.rw(async () => {
      await this.putMeta('enrollment', enrollment);
      await this.putMeta('privateKey', keys.privateKey);
      await this.putMeta('publicKey', keys.publicKey);
      await this.putMeta('token', r.token);
      await this.putMeta('tokenExpiresAt', r.expiresAt);
      await this.putMeta('deviceSeq', 0);
    });
    this.creds = { enrollment, privateKey: keys.privateKey, token: r.token, tokenExpiresAt: r.expiresAt };
    this.supervise = undefined;
    this.fatal = false;
    await this.changed();
    if (this.auto) {
      this.schedule(0, false);
      this.openStream();
    }
    return enrollment;
  }

  collections(): readonly CollectionDefinition[] {
    return this.defs;
  }

  validate(collection: string, data: Record<string, unknown>): ValidationProblem[] {
    return validateJson(this.requireDef(collection).schema, data);
  }

  private checkRecord(def: CollectionDefinition, data: Data): void {
    const problems = validateJson(def.schema, data, { maxProblems: 1 });
    if (problems.length > 0) {
      const p = problems[0]!;
      const name = p.field.replace(/^\//, '');
      throw new CivicSyncError('VALIDATION_FAILED', name ? `${name}: ${p.message}` : p.message, p.field);
    }
  }

  // ------------------------------------------------------------------ local writes

  async create(collection: string, data: Record<string, unknown>): Promise<string> {
    const def = this.requireDef(collection);
    this.requireCreds();
    const input = clone(data);
    const full = withDefaults(def.schema, input);
    this.checkRecord(def, full);
    const id = uuid7(this.now());
    await this.optimistic(
      async () => ({ seq: (await this.meta<number>('deviceSeq')) ?? 0, hlc: await this.meta<string>('hlc') }),
      async (s) => this.sign(this.draft(s.seq + 1, s.hlc, { collection, recordId: id, op: 'create', baseVersion: 0, data: input })),
      async (m) => {
        await this.db.outbox.put(this.entryRow(m));
        await this.db.records.put({ collection, recordId: id, serverVersion: 0, serverData: null, data: full, dirty: 1, updatedAt: this.iso() });
        await this.putMeta('deviceSeq', m.deviceSeq);
        await this.putMeta('hlc', m.hlc);
      },
    );
    await this.afterWrite();
    return id;
  }

  async update(collection: string, recordId: string, changes: Record<string, unknown>): Promise<void> {
    const def = this.requireDef(collection);
    this.requireCreds();
    const patch = clone(changes);
    await this.optimistic(
      async () => {
        const rec = await this.db.records.get([collection, recordId]);
        if (!rec || rec.data === null) throw new CivicSyncError('RECORD_NOT_FOUND', `no record ${recordId} in ${collection}`);
        const next = patched(rec.data, patch);
        this.checkRecord(def, next);
        checkMonotonic(def, rec.data, next);
        const flying = await this.inFlight(collection, recordId);
        return { rec, next, flying, seq: (await this.meta<number>('deviceSeq')) ?? 0, hlc: await this.meta<string>('hlc') };
      },
      async (s) => {
        const last = s.flying[s.flying.length - 1];
        if (last && foldable(last)) {
          const lm = last.mutation;
          const merged = lm.op === 'create' ? patched(lm.data ?? {}, patch) : mergePatch(lm.data ?? {}, patch);
          const m = this.draft(s.seq, s.hlc, { ...lm, data: merged }, lm.deviceSeq);
          return { m: await this.sign(m), folded: last };
        }
        if (s.flying.length === 0 && s.rec.serverVersion > 0) {
          const m = this.draft(s.seq + 1, s.hlc, { collection, recordId, op: 'update', baseVersion: s.rec.serverVersion, data: patch });
          return { m: await this.sign(m), folded: undefined };
        }
        // An earlier change of this record is on its way: the edit waits in the record.
        return { m: undefined, folded: undefined };
      },
      async (b, s) => {
        if (b.m) {
          await this.db.outbox.put(this.entryRow(b.m, b.folded?.createdAt));
          if (!b.folded) await this.putMeta('deviceSeq', b.m.deviceSeq);
          await this.putMeta('hlc', b.m.hlc);
        }
        await this.db.records.put({ ...s.rec, data: s.next, dirty: 1, updatedAt: this.iso() });
      },
    );
    await this.afterWrite();
  }

  async remove(collection: string, recordId: string): Promise<void> {
    this.requireDef(collection);
    this.requireCreds();
    await this.optimistic(
      async () => {
        const rec = await this.db.records.get([collection, recordId]);
        if (!rec || rec.data === null) throw new CivicSyncError('RECORD_NOT_FOUND', `no record ${recordId} in ${collection}`);
        const flying = await this.inFlight(collection, recordId);
        return { rec, flying, seq: (await this.meta<number>('deviceSeq')) ?? 0, hlc: await this.meta<string>('hlc') };
      },
      async (s) => {
        const last = s.flying[s.flying.length - 1];
        if (last && foldable(last) && last.mutation.op === 'update') {
          const lm = last.mutation;
          const m = this.draft(s.seq, s.hlc, { mutationId: lm.mutationId, collection, recordId, op: 'delete', baseVersion: lm.baseVersion }, lm.deviceSeq);
          return { kind: 'fold' as const, m: await this.sign(m), folded: last };
        }
        if (last && foldable(last) && last.mutation.op === 'create' && s.flying.length === 1 && last.deviceSeq === s.seq) {
          // A create never sent, and the newest number: both fold into nothing, and its number is
          // given back, so no deviceSeq is skipped.
          return { kind: 'vanish' as const, m: undefined, folded: last };
        }
        if (s.flying.length === 0 && s.rec.serverVersion > 0) {
          const m = this.draft(s.seq + 1, s.hlc, { collection, recordId, op: 'delete', baseVersion: s.rec.serverVersion });
          return { kind: 'new' as const, m: await this.sign(m), folded: undefined };
        }
        return { kind: 'wait' as const, m: undefined, folded: undefined };
      },
      async (b, s) => {
        if (b.kind === 'vanish') {
          await this.db.outbox.delete(b.folded!.mutationId);
          await this.putMeta('deviceSeq', s.seq - 1);
          await this.db.records.delete([collection, recordId]);
          return;
        }
        if (b.m) {
          await this.db.outbox.put(this.entryRow(b.m, b.folded?.createdAt));
          if (b.kind === 'new') await this.putMeta('deviceSeq', b.m.deviceSeq);
          await this.putMeta('hlc', b.m.hlc);
        }
        await this.db.records.put({ ...s.rec, data: null, dirty: 1, updatedAt: this.iso() });
      },
    );
    await this.afterWrite();
  }

  private async afterWrite(): Promise<void> {
    await this.changed();
    if (this.auto) {
      this.registerBackgroundSync();
      if (this.st.online && !this.fatal) this.schedule(this.tuning.writeDebounceMs, false, true);
    }
  }

  // ------------------------------------------------------------------ reads

  private toLocal(row: RecordRow, entries: OutboxRow[], notices: NoticeRow[]): LocalRecord {
    const state = recordState(row, entries, notices);
    const notice = state === 'conflict' || state === 'rejected' ? newest(notices) : undefined;
    return {
      collection: row.collection,
      recordId: row.recordId,
      data: clone(row.data ?? row.serverData ?? {}),
      version: row.serverVersion,
      deleted: row.data === null,
      state,
      ...(notice ? { notice: publicNotice(notice) } : {}),
    };
  }

  private refusedCreate(n: NoticeRow): LocalRecord {
    return {
      collection: n.collection,
      recordId: n.recordId,
      data: clone(n.refusedData ?? {}),
      version: 0,
      deleted: true,
      state: 'rejected',
      notice: publicNotice(n),
    };
  }

  async get(collection: string, recordId: string): Promise<LocalRecord | undefined> {
    const t = this.db;
    return t.transaction('r', [t.records, t.outbox, t.notices], async () => {
      const row = await t.records.get([collection, recordId]);
      const notices = await t.notices.where('[collection+recordId]').equals([collection, recordId]).toArray();
      if (!row || (row.data === null && row.serverData === null && row.serverVersion === 0)) {
        const refused = newest(notices.filter((n) => n.refusedData !== undefined));
        return refused ? this.refusedCreate(refused) : undefined;
      }
      return this.toLocal(row, await this.entriesOf(collection, recordId), notices);
    });
  }

  async list(collection: string): Promise<LocalRecord[]> {
    const t = this.db;
    return t.transaction('r', [t.records, t.outbox, t.notices], async () => {
      const rows = await t.records.where('collection').equals(collection).toArray();
      const entries = await t.outbox
        .where('[collection+recordId]')
        .between([collection, Dexie.minKey], [collection, Dexie.maxKey])
        .toArray();
      const notices = (await t.notices.toArray()).filter((n) => n.collection === collection);
      const entriesBy = groupBy(entries.sort(byDeviceSeq), (e) => e.recordId);
      const noticesBy = groupBy(notices, (n) => n.recordId);
      const out: LocalRecord[] = [];
      const shown = new Set<string>();
      for (const row of rows) {
        const mine = entriesBy.get(row.recordId) ?? [];
        // Tombstones are not listed, but a pending delete is (struck out until it is through).
        if (row.data === null && row.dirty === 0) continue;
        out.push(this.toLocal(row, mine, noticesBy.get(row.recordId) ?? []));
        shown.add(row.recordId);
      }
      for (const [recordId, ns] of noticesBy) {
        if (shown.has(recordId)) continue;
        const refused = newest(ns.filter((n) => n.refusedData !== undefined));
        if (refused) out.push(this.refusedCreate(refused));
      }
      return out;
    });
  }

  async notices(): Promise<Notice[]> {
    const rows = await this.db.notices.orderBy('createdAt').reverse().toArray();
    return rows.map(publicNotice);
  }

  async dismissNotice(id: string): Promise<void> {
    await this.rw(async () => {
      const n = await this.db.notices.get(id);
      if (!n) return;
      await this.db.notices.delete(id);
      if (n.mutationId) {
        const others = await this.db.notices.where('mutationId').equals(n.mutationId).count();
        const e = await this.db.outbox.get(n.mutationId);
        // A refused change the user has now seen is forgotten (the Java SDK's acknowledgeRejections).
        if (others === 0 && e && e.state === 'rejected') await this.db.outbox.delete(n.mutationId);
      }
    });
    await this.changed();
  }

  // ------------------------------------------------------------------ status and listeners

  status(): SyncStatus {
    return { ...this.st };
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async refreshStatus(): Promise<void> {
    const t = this.db;
    const s = await t.transaction('r', [t.meta, t.records, t.outbox, t.notices], async () => {
      const entries = await t.outbox.toArray();
      const count = (st: EntryState) => entries.filter((e) => e.state === st).length;
      // Grouped once: with thousands of queued changes nearly every record is dirty, and scanning
      // every entry for every record was quadratic.
      const flyingOf = new Map<string, OutboxRow[]>();
      for (const e of entries) {
        if (!IN_FLIGHT.includes(e.state)) continue;
        const k = recordKey(e.collection, e.recordId);
        const list = flyingOf.get(k);
        if (list) list.push(e);
        else flyingOf.set(k, [e]);
      }
      let waiting = 0;
      for (const rec of await t.records.where('dirty').equals(1).toArray()) {
        const flying = flyingOf.get(recordKey(rec.collection, rec.recordId)) ?? [];
        const d = diff(replay(this.def(rec.collection), rec.serverData, flying.sort(byDeviceSeq).map((e) => e.mutation)), rec.data);
        if (d.kind !== 'none') waiting++;
      }
      const notices = await t.notices.toArray();
      return {
        pending: count('pending') + count('sending') + count('held') + waiting,
        conflicts: count('conflict'),
        rejected: notices.filter((n) => n.kind === 'rejected').length,
        lastSyncAt: await this.meta<string>('lastSyncAt'),
      };
    });
    this.st.pending = s.pending;
    this.st.conflicts = s.conflicts;
    this.st.rejected = s.rejected;
    if (s.lastSyncAt) this.st.lastSyncAt = s.lastSyncAt;
  }

  /** Local data changed: recompute the counts, tell listeners here and in other tabs. */
  private async changed(): Promise<void> {
    await this.refreshStatus();
    this.notify(true);
  }

  private notify(broadcast: boolean): void {
    if (broadcast && this.channel) {
      try {
        this.channel.postMessage({ src: this.instanceId, db: this.db.name });
      } catch {
        // a closed channel
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (e) {
        console.error('civicsync: a listener failed', e);
      }
    }
  }

  // ------------------------------------------------------------------ sync

  syncNow(): Promise<SyncReport> {
    if (this.running) {
      if (!this.queued) {
        this.queued = this.running
          .catch(() => undefined)
          .then(() => {
            this.queued = undefined;
            return this.startSync();
          });
      }
      return this.queued;
    }
    return this.startSync();
  }

  private startSync(): Promise<SyncReport> {
    const p = this.runSync().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    // Callers get the rejection; a sync nobody waits for (the client was closed under it) must
    // not surface as an unhandled rejection.
    p.catch(() => undefined);
    this.running = p;
    return p;
  }

  private async runSync(): Promise<SyncReport> {
    this.requireCreds();
    this.syncStarts++;
    const n: Counters = { pushed: 0, pulled: 0, rejected: 0, conflicts: 0 };
    this.st.phase = 'syncing';
    this.st.nextAttemptAt = undefined;
    this.notify(false);
    let complete = false;
    let failure: unknown;
    try {
      await withLock(LOCK_NAME, async () => {
        await this.reload();
        await this.renewIfDue();
        await this.refreshCollectionsIfDue();
        await this.pushAll(n);
        await this.pullAll(n);
        if ((await this.outcomesAll(n)) > 0) {
          // Outcomes settled held or parked changes: edits that waited on them go out now.
          await this.pushAll(n);
          await this.pullAll(n);
        }
      });
      complete = true;
    } catch (e) {
      failure = e;
    }
    if (complete) {
      const at = this.iso();
      await this.rw(() => this.putMeta('lastSyncAt', at));
      this.st.lastSyncAt = at;
      this.st.online = true;
      this.st.lastError = undefined;
      this.st.lastErrorCode = undefined;
      this.failures = 0;
      this.retryAfterMs = 0;
    } else {
      const code = failure instanceof CivicSyncError ? failure.code : 'INTERNAL';
      const message = failure instanceof Error ? failure.message : String(failure);
      if (isNetworkFailure(failure)) this.st.online = false;
      else if (failure instanceof ServerError) this.st.online = true;
      this.st.lastError = syncErrorMessage(code, message);
      this.st.lastErrorCode = code;
      this.failures++;
      this.retryAfterMs = failure instanceof ServerError && failure.retryAfterSeconds ? failure.retryAfterSeconds * 1000 : 0;
      this.fatal = code === 'DEVICE_REVOKED' || code === 'NOT_ENROLLED';
      if (!(failure instanceof CivicSyncError)) console.error('civicsync: sync failed', failure);
    }
    this.st.phase = 'idle';
    if (this.fatal) {
      // Revoked or not enrolled: nothing more is tried until the device is enrolled again.
      this.stopStream();
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerKind = undefined;
    }
    if (this.auto && !this.closed) {
      if (complete) {
        this.schedule(this.pollInterval(), false);
        this.openStream(); // where it could not be opened before (offline, not enrolled)
      } else if (!this.fatal) this.schedule(this.backoffDelay(), true);
    }
    await this.changed();
    return { ...n, complete };
  }

  private backoffDelay(): number {
    const n = Math.max(0, this.failures - 1);
    const ceiling = Math.min(this.tuning.backoffCapMs, this.tuning.backoffBaseMs * 2 ** Math.min(n, 30));
    return Math.max(this.retryAfterMs, Math.floor(this.random() * ceiling));
  }

  /** Runs a server step with the token; renews it by key once on TOKEN_EXPIRED or UNAUTHENTICATED. */
  private async withToken<T>(step: (token: string) => Promise<T>): Promise<T> {
    const c = this.requireCreds();
    try {
      return await step(c.token);
    } catch (e) {
      if (!(e instanceof CivicSyncError) || (e.code !== 'TOKEN_EXPIRED' && e.code !== 'UNAUTHENTICATED')) throw e;
      return step(await this.renewToken());
    }
  }

  /** Trades a signed challenge for a new token (the old one stops working). */
  async renewToken(): Promise<string> {
    const c = this.requireCreds();
    const { tenantId, deviceId } = c.enrollment;
    const ch = await this.transport.request<{ challenge: string }>('/v1/devices/challenge', { body: JSON.stringify({ deviceId }) });
    const signature = await signText(c.privateKey, tokenSigningInput(tenantId, deviceId, ch.challenge));
    const t = await this.transport.request<{ token: string; expiresAt: string }>('/v1/devices/token', {
      body: JSON.stringify({ deviceId, challenge: ch.challenge, signature }),
    });
    await this.rw(async () => {
      await this.putMeta('token', t.token);
      await this.putMeta('tokenExpiresAt', t.expiresAt);
    });
    c.token = t.token;
    c.tokenExpiresAt = t.expiresAt;
    this.tokenChanged();
    this.notify(true); // other tabs reload it (their stream too must use the new token)
    return t.token;
  }

  private async renewIfDue(): Promise<void> {
    const exp = this.creds?.tokenExpiresAt ? Date.parse(this.creds.tokenExpiresAt) : NaN;
    if (Number.isFinite(exp) && exp - this.now() < this.tuning.renewBeforeMs) await this.renewToken();
  }

  private async refreshCollectionsIfDue(): Promise<void> {
    const stored = await this.db.collections.count();
    if (stored > 0 && this.collectionsFetchedAt > 0 && this.now() - this.collectionsFetchedAt < this.tuning.collectionsMaxAgeMs) return;
    const r = await this.withToken((token) => this.transport.request<{ collections: CollectionDefinition[] }>('/v1/collections', { token }));
    if (!r || !Array.isArray(r.collections) || r.collections.length === 0) return;
    await this.rw(async () => {
      await this.db.collections.clear();
      await this.db.collections.bulkPut(r.collections);
    });
    this.defs = r.collections;
    this.collectionsFetchedAt = this.now();
  }

  // -------------------------------------------------------------- push

  private async pushAll(n: Counters): Promise<void> {
    let batchSize = this.tuning.batchSize;
    const sentThisSync = new Set<string>();
    for (;;) {
      await this.materializeWaitingEdits();
      const t = this.db;
      const batch = await this.rw(async () => {
        const ready = (await t.outbox.where('state').anyOf('pending', 'sending').toArray()).sort(byDeviceSeq).slice(0, batchSize);
        const at = this.iso();
        for (const e of ready) await t.outbox.put({ ...e, state: 'sending', attempts: e.attempts + 1, updatedAt: at });
        return ready;
      });
      if (batch.length === 0) return;
      if (batch.every((e) => sentThisSync.has(e.mutationId))) return; // answered without a result: next sync
      batch.forEach((e) => sentThisSync.add(e.mutationId));
      const body = '{"mutations":[' + batch.map((e) => e.wire).join(',') + ']}';
      let response: { results?: MinimalResultWire[] };
      try {
        // Prefer: return=minimal: results by position, without the two ids each would repeat.
        response = await this.withToken((token) =>
          this.transport.request('/v1/sync/push', { token, body, headers: { Prefer: 'return=minimal' } }),
        );
      } catch (e) {
        if (e instanceof CivicSyncError && (e.code === 'PAYLOAD_TOO_LARGE' || e.code === 'TOO_MANY_MUTATIONS') && batch.length > 1) {
          batchSize = Math.ceil(batch.length / 2);
          batch.forEach((x) => sentThisSync.delete(x.mutationId));
          continue;
        }
        throw e;
      }
      await this.rw(async () => {
        for (const r of withIdsOf(response.results ?? [], batch)) await this.reconcile(r, n, false);
      });
      n.pushed += batch.length;
      await this.changed();
    }
  }

  /** Turns edits that waited for an earlier change of their record into entries, now that nothing of it is on its way. */
  private async materializeWaitingEdits(): Promise<void> {
    type Plan = { rec: RecordRow; kind: 'clean' | 'drop' | 'create' | 'update' | 'delete'; data?: Data };
    await this.optimistic(
      async () => {
        const plans: Plan[] = [];
        // One read of the entries in flight rather than one query per dirty record (before every
        // push, and with a large outbox nearly every record is dirty).
        const flying = new Set((await this.db.outbox.where('state').anyOf(IN_FLIGHT).toArray()).map((e) => recordKey(e.collection, e.recordId)));
        for (const rec of await this.db.records.where('dirty').equals(1).toArray()) {
          if (flying.has(recordKey(rec.collection, rec.recordId))) continue;
          const d = diff(rec.serverData, rec.data);
          if (d.kind === 'none') plans.push({ rec, kind: 'clean' });
          else if (d.kind === 'delete') plans.push({ rec, kind: rec.serverVersion > 0 ? 'delete' : 'drop' });
          else if (d.kind === 'patch' && rec.serverVersion > 0 && rec.serverData !== null) plans.push({ rec, kind: 'update', data: d.fields });
          else plans.push({ rec, kind: 'create', data: clone(rec.data ?? {}) });
        }
        return { plans, seq: (await this.meta<number>('deviceSeq')) ?? 0, hlc: await this.meta<string>('hlc') };
      },
      async (s) => {
        const out: Mutation[] = [];
        let seq = s.seq;
        let hlc = s.hlc;
        for (const p of s.plans) {
          if (p.kind === 'clean' || p.kind === 'drop') continue;
          const base = p.kind === 'create' ? 0 : p.rec.serverVersion;
          const m = this.draft(++seq, hlc, {
            collection: p.rec.collection,
            recordId: p.rec.recordId,
            op: p.kind,
            baseVersion: base,
            ...(p.kind === 'delete' ? {} : { data: p.data }),
          });
          hlc = m.hlc;
          out.push(await this.sign(m));
        }
        return { mutations: out, seq, hlc };
      },
      async (b, s) => {
        for (const p of s.plans) {
          if (p.kind === 'clean') await this.db.records.put({ ...p.rec, dirty: 0 });
          if (p.kind === 'drop') await this.db.records.delete([p.rec.collection, p.rec.recordId]);
        }
        for (const m of b.mutations) await this.db.outbox.put(this.entryRow(m));
        if (b.mutations.length > 0) {
          await this.putMeta('deviceSeq', b.seq);
          await this.putMeta('hlc', b.hlc);
        }
      },
    );
  }

  /** Applies the server's answer (a push result or an outcome) for one mutation to its entry and record. Runs inside rw(). */
  private async reconcile(r: MutationResultWire, n: Counters, outcome: boolean): Promise<void> {
    const t = this.db;
    const e = await t.outbox.get(r.mutationId);
    if (!e) return; // an answer for an entry already settled
    const m = e.mutation;
    const def = this.def(m.collection);
    const rec = await t.records.get([m.collection, m.recordId]);
    const flyingBefore = await this.inFlight(m.collection, m.recordId);
    let waiting: Diff = rec ? diff(replay(def, rec.serverData, flyingBefore.map((x) => x.mutation)), rec.data) : NO_DIFF;
    let version = rec?.serverVersion ?? 0;
    let server: Data | null = rec?.serverData ?? null;
    const shown = rec?.data ?? replay(def, server, flyingBefore.map((x) => x.mutation)) ?? withDefaults(def?.schema, m.data ?? {});
    const at = this.iso();
    const takeServerRecord = (sr: MutationResultWire['record']) => {
      if (sr && sr.version >= version) {
        server = sr.deleted ? null : clone(sr.data ?? {});
        version = sr.version;
      }
    };
    switch (r.status) {
      case 'applied':
        server = applyServer(def, server, m);
        version = r.version ?? version;
        await t.outbox.delete(m.mutationId);
        break;
      case 'merged':
        takeServerRecord(r.record);
        await t.outbox.delete(m.mutationId);
        if (r.resolution === 'keepServer' || r.resolution === 'takeClient' || r.resolution === 'edit') {
          await this.replaceNotices(m.mutationId, {
            kind: 'resolved',
            collection: m.collection,
            recordId: m.recordId,
            message: resolutionMessage(m.collection, r.record?.data ?? shownData(e, shown), r.resolution),
            mutationId: m.mutationId,
          });
        }
        break;
      case 'conflict':
        takeServerRecord(r.serverRecord);
        await t.outbox.put({ ...e, state: 'conflict', result: r, updatedAt: at });
        n.conflicts++;
        await this.replaceNotices(m.mutationId, {
          kind: 'conflict',
          collection: m.collection,
          recordId: m.recordId,
          code: r.error?.code ?? 'VERSION_CONFLICT',
          message: conflictMessage(m.collection, shown),
          mutationId: m.mutationId,
        });
        break;
      case 'rejected': {
        takeServerRecord(r.serverRecord);
        await t.outbox.put({ ...e, state: 'rejected', result: r, updatedAt: at });
        // The refused change is dropped from the view, and so are edits waiting on it.
        waiting = NO_DIFF;
        n.rejected++;
        const code = r.error?.code ?? 'REJECTED';
        if (code === 'CLOCK_SKEW') await t.meta.delete('hlc'); // the stored reading is ahead too
        await this.replaceNotices(m.mutationId, {
          kind: 'rejected',
          collection: m.collection,
          recordId: m.recordId,
          code,
          message: rejectionMessage(m.collection, m.op, shown, r.error ?? { code }),
          mutationId: m.mutationId,
          ...(m.op === 'create' ? { refusedData: clone(shown ?? withDefaults(def?.schema, m.data ?? {})) } : {}),
        });
        break;
      }
      case 'held':
        await t.outbox.put({ ...e, state: 'held', result: r, updatedAt: at });
        break;
    }
    void outcome;
    await this.rebase(m.collection, m.recordId, def, version, server, waiting);
  }

  /** Replaces the notices of one mutation by a new one. Runs inside rw(). */
  private async replaceNotices(mutationId: string, n: Omit<NoticeRow, 'id' | 'createdAt'>): Promise<void> {
    await this.db.notices.where('mutationId').equals(mutationId).delete();
    await this.db.notices.put({ ...n, id: uuid(), createdAt: this.iso() } as NoticeRow);
  }

  /** Rebuilds the local view from the server layer, the entries still on their way, and waiting edits. Runs inside rw(). */
  private async rebase(collection: string, recordId: string, def: CollectionDefinition | undefined, version: number, server: Data | null, waiting: Diff): Promise<void> {
    const flying = await this.inFlight(collection, recordId);
    const view = applyDiff(replay(def, server, flying.map((e) => e.mutation)), waiting);
    const dirty = flying.length > 0 || waiting.kind !== 'none';
    if (view === null && server === null && version === 0 && !dirty) {
      await this.db.records.delete([collection, recordId]);
      return;
    }
    await this.db.records.put({ collection, recordId, serverVersion: version, serverData: server, data: view, dirty: dirty ? 1 : 0, updatedAt: this.iso() });
  }

  // -------------------------------------------------------------- pull

  private async pullAll(n: Counters): Promise<void> {
    for (let pages = 0; pages < 100_000; pages++) {
      const cursor = await this.meta<string>('pullCursor');
      const q = `/v1/sync/pull?limit=${this.tuning.pageSize}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
      let page: { changes: ChangeWire[]; cursor: string; hasMore: boolean };
      try {
        page = await this.withToken((token) => this.transport.request(q, { token }));
      } catch (e) {
        // RESYNC_REQUIRED: the server compacted deletions this cursor has not seen.
        if (e instanceof CivicSyncError && (e.code === 'CURSOR_INVALID' || e.code === 'RESYNC_REQUIRED') && cursor) {
          await this.resetFeed();
          continue;
        }
        throw e;
      }
      await this.rw(async () => {
        for (const c of page.changes ?? []) await this.applyChange(c);
        await this.putMeta('pullCursor', page.cursor);
      });
      n.pulled += page.changes?.length ?? 0;
      if ((page.changes?.length ?? 0) > 0) await this.changed();
      if (!page.hasMore) return;
    }
  }

  /**
   * The server no longer accepts the cursor: forget every record without local changes and
   * download again from the start. Records with changes on their way stay and are rebased as the
   * feed returns them; the outbox is unaffected.
   */
  private async resetFeed(): Promise<void> {
    await this.rw(async () => {
      await this.db.records.where('dirty').equals(0).delete();
      await this.putMeta('pullCursor', '');
    });
    await this.changed();
  }

  private async applyChange(c: ChangeWire): Promise<void> {
    const t = this.db;
    if (c.op === 'remove') {
      await t.records.delete([c.collection, c.recordId]);
      return;
    }
    const def = this.def(c.collection);
    const rec = await t.records.get([c.collection, c.recordId]);
    if (rec && rec.serverVersion > c.version) return; // older than what a push answer already told us
    const flying = await this.inFlight(c.collection, c.recordId);
    const waiting = rec ? diff(replay(def, rec.serverData, flying.map((e) => e.mutation)), rec.data) : NO_DIFF;
    const server = c.op === 'delete' ? null : clone(c.data ?? {});
    await this.rebase(c.collection, c.recordId, def, c.version, server, waiting);
  }

  // -------------------------------------------------------------- outcomes

  private async outcomesAll(n: Counters): Promise<number> {
    let applied = 0;
    for (let pages = 0; pages < 100_000; pages++) {
      const waiting = await this.db.outbox.where('state').anyOf('held', 'conflict', 'rejected').count();
      if (waiting === 0) return applied;
      const cursor = await this.meta<string>('outcomesCursor');
      const q = `/v1/sync/outcomes?limit=${this.tuning.pageSize}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
      let page: { outcomes: MutationResultWire[]; cursor: string; hasMore: boolean };
      try {
        page = await this.withToken((token) => this.transport.request(q, { token }));
      } catch (e) {
        if (e instanceof CivicSyncError && e.code === 'CURSOR_INVALID' && cursor) {
          await this.rw(() => this.putMeta('outcomesCursor', ''));
          continue;
        }
        throw e;
      }
      await this.rw(async () => {
        for (const r of page.outcomes ?? []) {
          const e = await this.db.outbox.get(r.mutationId);
          if (r.status === 'rejected' && e && (e.state === 'rejected' || e.state === 'conflict')) {
            // A refused or parked change a supervisor dismissed: it is already out of the view.
            await this.db.outbox.put({ ...e, state: 'rejected', result: r, updatedAt: this.iso() });
            if (r.resolution) {
              const prior = await this.db.notices.where('mutationId').equals(r.mutationId).first();
              await this.replaceNotices(r.mutationId, {
                kind: 'resolved',
                collection: e.collection,
                recordId: e.recordId,
                code: r.error?.code,
                message: resolutionMessage(e.collection, prior?.refusedData ?? e.mutation.data ?? null, r.resolution, true),
                mutationId: r.mutationId,
              });
            }
            continue;
          }
          await this.reconcile(r, n, true);
        }
        await this.putMeta('outcomesCursor', page.cursor);
      });
      applied += page.outcomes?.length ?? 0;
      if ((page.outcomes?.length ?? 0) > 0) await this.changed();
      if (!page.hasMore) return applied;
    }
    return applied;
  }

  // -------------------------------------------------------------- auto sync

  startAutoSync(): void {
    if (this.auto || this.closed) return;
    this.auto = true;
    const g = globalThis as { addEventListener?: (type: string, l: () => void) => void };
    g.addEventListener?.('online', this.onOnline);
    g.addEventListener?.('offline', this.onOffline);
    this.registerBackgroundSync();
    this.schedule(0, false);
    this.streamOpens = 0;
    this.streamFailures = 0;
    this.openStream();
  }

  stopAutoSync(): void {
    this.auto = false;
    const g = globalThis as { removeEventListener?: (type: string, l: () => void) => void };
    g.removeEventListener?.('online', this.onOnline);
    g.removeEventListener?.('offline', this.onOffline);
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.timer = undefined;
    this.timerKind = undefined;
    this.debounce = undefined;
    this.st.nextAttemptAt = undefined;
    if (this.st.phase === 'waiting') this.st.phase = 'idle';
    this.stopStream();
  }

  /**
   * Plans the next automatic sync. A backoff shows as phase 'waiting' with nextAttemptAt; a write
   * (soon = true) does not postpone a sync already due sooner.
   */
  private schedule(delayMs: number, backoff: boolean, soon = false): void {
    if (!this.auto || this.closed) return;
    if (soon) {
      if (this.debounce !== undefined) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = undefined;
        if (this.auto) void this.syncNow().catch(() => undefined);
      }, delayMs);
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerKind = backoff ? 'backoff' : delayMs === 0 ? 'now' : 'poll';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerKind = undefined;
      if (this.auto) void this.syncNow().catch(() => undefined);
    }, delayMs);
    if (backoff) {
      this.st.phase = 'waiting';
      this.st.nextAttemptAt = this.iso(this.now() + delayMs);
    } else {
      this.st.nextAttemptAt = undefined;
    }
  }

  /** The wait between syncs while all is well: rare while the live stream is open. */
  private pollInterval(): number {
    return this.st.live ? this.tuning.livePollIntervalMs : this.tuning.healthyIntervalMs;
  }

  // -------------------------------------------------------------- live stream

  private eventSourceCtor(): EventSourceCtor | undefined {
    if (this.eventSourceOption === null) return undefined;
    const c = this.eventSourceOption ?? (globalThis as { EventSource?: typeof EventSource }).EventSource;
    return typeof c === 'function' ? (c as unknown as EventSourceCtor) : undefined;
  }

  /**
   * Opens the live stream when auto sync runs, the device is online and enrolled, there is an
   * EventSource, and no stream is open or waiting to be reopened. The token goes in the URL
   * (EventSource cannot send headers). EventSource's own reconnecting is never used: it would go
   * on with a token that has expired; an error closes the stream and this reopens it.
   */
  private openStream(): void {
    if (!this.auto || this.closed || this.fatal || !this.creds || !this.st.online) return;
    if (this.stream || this.streamTimer !== undefined) return;
    const Ctor = this.eventSourceCtor();
    if (!Ctor) return;
    const token = this.creds.token;
    this.streamToken = token;
    let es: EventSourceLike;
    try {
      es = new Ctor(this.transport.url('/v1/sync/stream?access_token=' + encodeURIComponent(token)));
    } catch (e) {
      console.error('civicsync: the live stream could not be opened', e);
      this.streamFailures++;
      this.planReopen();
      return;
    }
    const s: LiveStream = { es, reconnect: this.streamOpens > 0, syncsBefore: this.syncStarts };
    this.streamOpens++;
    this.stream = s;
    const up = () => {
      if (this.stream !== s || s.openedAt !== undefined) return;
      s.openedAt = this.now();
      this.setLive(true);
    };
    es.addEventListener('open', up);
    es.addEventListener('ready', () => {
      if (this.stream !== s) return;
      up();
      // Changes may have come while no stream listened: after a reconnect, or when a sync pulled
      // before this stream was there to hear of later commits.
      if (s.reconnect || this.syncStarts > s.syncsBefore || this.running) this.hint();
    });
    es.addEventListener('changes', () => {
      if (this.stream !== s) return;
      up();
      this.hint();
    });
    es.addEventListener('error', () => {
      if (this.stream === s) this.streamBroke(s);
    });
  }

  /** Something to pull: a sync within a moment; events close together make one sync. */
  private hint(): void {
    if (!this.auto || this.closed || this.fatal) return;
    if (this.debounce !== undefined) return; // one is coming already
    this.schedule(this.tuning.writeDebounceMs, false, true);
  }

  /** The stream failed (or never opened): back to regular polling, and reopen it later with backoff. */
  private streamBroke(s: LiveStream): void {
    if (s.openedAt !== undefined && this.now() - s.openedAt >= this.tuning.streamHealthyAfterMs) this.streamFailures = 0;
    this.closeStream(); // not live any more: the regular poll is every healthyIntervalMs again
    this.streamFailures++;
    this.planReopen();
  }

  private planReopen(): void {
    if (!this.auto || this.closed || this.fatal) return;
    const n = Math.max(0, this.streamFailures - 1);
    const ceiling = Math.min(this.tuning.streamBackoffCapMs, this.tuning.streamBackoffBaseMs * 2 ** Math.min(n, 30));
    const delay = Math.floor(ceiling / 2 + (this.random() * ceiling) / 2);
    if (this.streamTimer !== undefined) clearTimeout(this.streamTimer);
    this.streamTimer = setTimeout(() => {
      this.streamTimer = undefined;
      this.openStream();
    }, delay);
  }

  private setLive(live: boolean): void {
    if ((this.st.live ?? false) === live) return;
    this.st.live = live;
    // The regular poll follows: rare while the stream is open, every healthyIntervalMs without it.
    if (this.auto && !this.closed && this.timerKind === 'poll') this.schedule(this.pollInterval(), false);
    this.notify(false);
  }

  /** Closes the open stream, if any (a planned reopen stays planned). */
  private closeStream(): void {
    const s = this.stream;
    if (!s) return;
    this.stream = undefined;
    try {
      s.es.close();
    } catch {
      // already closed
    }
    this.setLive(false);
  }

  /** Closes the stream and forgets any planned reopen (stop, offline, revoked, closed). */
  private stopStream(): void {
    if (this.streamTimer !== undefined) clearTimeout(this.streamTimer);
    this.streamTimer = undefined;
    this.closeStream();
  }

  /** After a token renewal (here or in another tab): a stream with the old token is reopened with the new one. */
  private tokenChanged(): void {
    const token = this.creds?.token;
    if (token === undefined || token === this.streamToken) return;
    if (this.stream) {
      this.closeStream();
      this.openStream();
    } else if (this.streamTimer !== undefined) {
      // It may have broken because the token expired: try the new one now.
      this.stopStream();
      this.openStream();
    }
  }

  /** Asks the browser for a Background Sync ('civicsync-sync') where it has one; the service worker syncs on it. */
  private registerBackgroundSync(): void {
    type Reg = { sync?: { register(tag: string): Promise<void> } };
    const g = globalThis as {
      registration?: Reg;
      navigator?: { serviceWorker?: { getRegistration?: () => Promise<Reg | undefined> } };
    };
    try {
      const reg: Promise<Reg | undefined> | undefined = g.registration
        ? Promise.resolve(g.registration)
        : g.navigator?.serviceWorker?.getRegistration?.();
      void reg?.then((r) => r?.sync?.register(LOCK_NAME)).catch(() => undefined);
    } catch {
      // no Background Sync here
    }
  }

  /** Stops auto sync, closes the channel and the database (for tests and page teardown). */
  close(): void {
    this.stopAutoSync();
    this.closed = true;
    this.channel?.close();
    this.db.close();
  }

  // -------------------------------------------------------------- server calls

  private makeServerCalls(): ServerCalls {
    const get = <T>(path: string) => this.withToken((token) => this.transport.request<T>(path, { token }));
    return {
      inbox: async (query = {}) => {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
        const s = q.toString();
        const r = await get<{ items: InboxItem[] }>('/v1/inbox' + (s ? '?' + s : ''));
        return r.items ?? [];
      },
      resolve: async (id, request) => {
        const key = uuid();
        const body = JSON.stringify(request);
        for (let attempt = 0; ; attempt++) {
          try {
            return await this.withToken((token) =>
              this.transport.request<unknown>(`/v1/inbox/${encodeURIComponent(id)}/resolve`, { token, body, headers: { 'Idempotency-Key': key } }),
            );
          } catch (e) {
            const again = isNetworkFailure(e) || (e instanceof CivicSyncError && (e.status ?? 0) >= 500);
            if (!again || attempt >= 2) throw e;
            await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
          }
        }
      },
      stats: async (query = {}) => {
        const q = query.since ? '?since=' + encodeURIComponent(query.since) : '';
        return get<Stats>('/v1/admin/stats' + q);
      },
      canSupervise: () => {
        if (!this.supervise) {
          const p = get<unknown>('/v1/inbox?limit=1').then(
            () => true,
            (e: unknown) => {
              if (e instanceof CivicSyncError && (e.status === 403 || e.code === 'FORBIDDEN')) return false;
              throw e;
            },
          );
          this.supervise = p;
          p.catch(() => {
            if (this.supervise === p) this.supervise = undefined; // not known: ask again next time
          });
        }
        return this.supervise;
      },
    };
  }
}

interface ChangeWire {
  readonly collection: string;
  readonly recordId: string;
  readonly version: number;
  readonly op: 'upsert' | 'delete' | 'remove';
  readonly data?: Data;
  readonly updatedAt: string;
}

function foldable(e: OutboxRow): boolean {
  // Never sent: its content may still change under the same mutation id and deviceSeq.
  return e.state === 'pending' && e.attempts === 0;
}

function applyServer(def: CollectionDefinition | undefined, server: Data | null, m: Mutation): Data | null {
  return replay(def, server, [m]);
}

function shownData(e: OutboxRow, shown: Data | null): Data | null {
  return shown ?? e.mutation.data ?? null;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

function newest<T extends { createdAt: string }>(xs: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const x of xs) if (!best || x.createdAt >= best.createdAt) best = x;
  return best;
}

function publicNotice(n: NoticeRow): Notice {
  return {
    id: n.id,
    collection: n.collection,
    recordId: n.recordId,
    kind: n.kind,
    ...(n.code ? { code: n.code } : {}),
    message: n.message,
    createdAt: n.createdAt,
  };
}

function recordState(row: RecordRow, entries: readonly OutboxRow[], notices: readonly NoticeRow[]): RecordState {
  if (entries.some((e) => e.state === 'pending')) return 'pending';
  if (entries.some((e) => e.state === 'sending' || e.state === 'held')) return 'syncing';
  if (row.dirty === 1) return 'pending';
  if (entries.some((e) => e.state === 'conflict')) return 'conflict';
  if (notices.some((n) => n.kind === 'rejected')) return 'rejected';
  return 'synced';
}

export type { Op };
export { OFFLINE };

/** A push result as the minimal answer (Prefer: return=minimal) sends it: its position names it. */
type MinimalResultWire = Omit<MutationResultWire, 'mutationId' | 'recordId'> & { mutationId?: string; recordId?: string };

/** A push's results with the ids of the mutations in the same positions where the answer left them out. */
export function withIdsOf(results: readonly MinimalResultWire[], batch: readonly Pick<OutboxRow, 'mutationId' | 'recordId'>[]): MutationResultWire[] {
  if (results.length !== batch.length) {
    throw new ServerError('MALFORMED_RESPONSE', `the push sent ${batch.length} mutations and got ${results.length} results`, undefined, 200);
  }
  return results.map((r, i) => {
    const sent = batch[i]!;
    if (r.mutationId === undefined) return { ...r, mutationId: sent.mutationId, recordId: sent.recordId };
    if (r.mutationId !== sent.mutationId) {
      throw new ServerError('MALFORMED_RESPONSE', `result ${i} answers ${r.mutationId}, not ${sent.mutationId}`, undefined, 200);
    }
    return r as MutationResultWire;
  });
}
