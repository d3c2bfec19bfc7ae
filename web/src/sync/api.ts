/**
 * The public face of the web app's sync library: what the UI (src/ui) and the service worker may
 * use. Everything else under src/sync is internal. The library speaks the wire protocol of
 * docs/protocol.md with the same outbox semantics as the Java SDK (docs/client-sdk.md): every
 * write is local and immediate, signed when written, and delivered exactly once through retries.
 *
 * Nothing here touches the DOM, so the service worker can run a sync with the same code.
 */

/** How a record stands with the server, shown as a badge next to it. */
export type RecordState = 'synced' | 'pending' | 'syncing' | 'conflict' | 'rejected';

/** A record as this device sees it: the server's version with local changes not yet decided applied on top. */
export interface LocalRecord {
  readonly collection: string;
  readonly recordId: string;
  /** The record's data as the user should see it now. For a rolled-back create: the data that was refused. */
  readonly data: Record<string, unknown>;
  /** The last server version this device knows; 0 when the server has never accepted the record. */
  readonly version: number;
  /** True for a tombstone, a pending delete, or a rolled-back create (which the UI shows struck out until dismissed). */
  readonly deleted: boolean;
  readonly state: RecordState;
  /** The newest undismissed notice of this record, when its state is 'conflict' or 'rejected'. */
  readonly notice?: Notice;
}

/**
 * Something the user should read about one of their changes: a rejection (the change was rolled
 * back), a conflict parked for a supervisor, or a supervisor's resolution.
 */
export interface Notice {
  readonly id: string;
  readonly collection: string;
  readonly recordId: string;
  readonly kind: 'rejected' | 'conflict' | 'resolved';
  /** The server's error code (e.g. CAPACITY_EXCEEDED), when there is one. */
  readonly code?: string;
  /** Plain words for the person at the screen, e.g. "Your booking for 10:00 could not be kept: that slot is full. Please choose another time." */
  readonly message: string;
  /** RFC 3339. */
  readonly createdAt: string;
}

/** What enrollment established; kept in IndexedDB (the private key is a non-extractable CryptoKey beside it). */
export interface Enrollment {
  readonly tenantId: string;
  readonly deviceId: string;
  readonly userId: string;
  readonly deviceName: string;
}

/** Where syncing stands, for the global indicator. */
export interface SyncStatus {
  /** navigator.onLine, corrected by the outcome of the last request (a failed fetch means offline). */
  readonly online: boolean;
  readonly phase: 'idle' | 'syncing' | 'waiting';
  /** Outbox entries not yet decided by the server (pending, sending or held). */
  readonly pending: number;
  readonly rejected: number;
  readonly conflicts: number;
  /** RFC 3339; absent before the first complete sync. */
  readonly lastSyncAt?: string;
  /** Plain words about the last failed attempt, absent after a success. */
  readonly lastError?: string;
  /** The error code of the last failed attempt (e.g. OFFLINE, DEVICE_REVOKED), absent after a success. */
  readonly lastErrorCode?: string;
  /** RFC 3339: when the timer will try again (backoff with jitter), while waiting. */
  readonly nextAttemptAt?: string;
  /**
   * True while the live stream (GET /v1/sync/stream) is open: the server says when there is
   * something to pull, so changes arrive within a moment and the timer only polls rarely. False
   * or absent: syncing is by polling (no stream yet, stream broken, offline, or no EventSource).
   */
  readonly live?: boolean;
}

/** A collection as GET /v1/collections describes it (collection-definition.schema.json). */
export interface CollectionDefinition {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  /** JSON Schema 2020-12 of the records' data (an object schema). */
  readonly schema: JsonSchema;
  readonly scopeField?: string;
  readonly policy?: unknown;
  readonly rules?: unknown;
  readonly access?: unknown;
}

export type JsonSchema = { readonly [key: string]: unknown };

/** One problem found by local validation, with the same codes the server uses. */
export interface ValidationProblem {
  /** JSON Pointer into the record data, e.g. "/slotStart". */
  readonly field: string;
  readonly message: string;
}

/** Thrown by writes that fail locally (VALIDATION_FAILED, INVALID_TRANSITION, NOT_ENROLLED, ...) and by server calls that fail. */
export class CivicSyncError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CivicSyncError';
  }
}

/** What one sync() did. */
export interface SyncReport {
  readonly pushed: number;
  readonly pulled: number;
  readonly rejected: number;
  readonly conflicts: number;
  /** False when the sync stopped early (offline, server error); the outbox is kept and retried. */
  readonly complete: boolean;
}

/** An item of the supervisor inbox (inbox-item.schema.json), as the server sends it. */
export type InboxItem = { readonly id: string; readonly kind: string; readonly status: string; readonly collection: string; readonly recordId: string; readonly [key: string]: unknown };

/** The server's statistics (GET /v1/admin/stats), see docs/protocol.md. */
export type Stats = { readonly [key: string]: unknown };

/** Calls that go straight to the server (online only); they throw CivicSyncError when they fail. */
export interface ServerCalls {
  /** GET /v1/inbox. */
  inbox(query?: { status?: 'open' | 'resolved'; kind?: string; collection?: string; limit?: number }): Promise<InboxItem[]>;
  /** POST /v1/inbox/{id}/resolve with an Idempotency-Key made once per call and reused on its retries. */
  resolve(id: string, request: { resolution: 'keepServer' | 'takeClient' | 'edit'; data?: Record<string, unknown>; comment?: string }): Promise<unknown>;
  /** GET /v1/admin/stats (the device's own tenant). */
  stats(query?: { since?: string }): Promise<Stats>;
  /** Whether this device's user may use the supervisor pages: probes GET /v1/inbox?limit=1 (403 means no). Cached per session. */
  canSupervise(): Promise<boolean>;
}

/** The library's entry point; create one per page (and one in the service worker) with openClient(). */
export interface CivicSyncWeb {
  enrollment(): Enrollment | undefined;
  /** Makes an Ed25519 key pair (WebCrypto, private key non-extractable), enrolls with the code, stores the result. */
  enroll(code: string, deviceName: string): Promise<Enrollment>;
  /** The collection definitions last fetched from the server (cached in IndexedDB; built-ins before the first fetch). */
  collections(): readonly CollectionDefinition[];
  /** Validates data against the collection's schema (full record). */
  validate(collection: string, data: Record<string, unknown>): ValidationProblem[];

  /** Local, immediate writes: validated, committed with a signed outbox entry in one IndexedDB transaction. */
  create(collection: string, data: Record<string, unknown>): Promise<string>;
  /** Only the changed top-level fields; null removes a field. */
  update(collection: string, recordId: string, changes: Record<string, unknown>): Promise<void>;
  remove(collection: string, recordId: string): Promise<void>;

  get(collection: string, recordId: string): Promise<LocalRecord | undefined>;
  /** Every record of the collection, including rolled-back creates that still have an undismissed notice. */
  list(collection: string): Promise<LocalRecord[]>;
  notices(): Promise<Notice[]>;
  dismissNotice(id: string): Promise<void>;

  status(): SyncStatus;
  /** Pushes the outbox, fetches outcomes, pulls until caught up. One sync at a time across tabs and the service worker (Web Locks). */
  syncNow(): Promise<SyncReport>;
  /**
   * Starts syncing on reconnect, on a timer with backoff and jitter, and registers Background Sync
   * where the browser has it. While online and enrolled it also holds the live stream open (where
   * there is an EventSource): a `changes` event starts a sync within a moment, and the timer then
   * polls only every few minutes; a broken stream falls back to the timer and is reopened with
   * backoff (status().live tells which).
   */
  startAutoSync(): void;
  /** Stops the timer and closes the live stream. */
  stopAutoSync(): void;
  /** Called after any change of local data or status (also changes made by another tab or the service worker). Returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;

  readonly server: ServerCalls;
}

export interface ClientOptions {
  /** Origin of the CivicSync server, e.g. location.origin. */
  readonly baseUrl: string;
  /** IndexedDB database name; default 'civicsync'. */
  readonly dbName?: string;
  /** For tests: fetch, clock, random and IndexedDB can be injected. */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly indexedDB?: IDBFactory;
  readonly IDBKeyRange?: typeof IDBKeyRange;
  /**
   * The EventSource constructor the live stream uses; absent: globalThis.EventSource. Null, or
   * absent where the platform has none (Node, some service workers): no stream, polling only.
   */
  readonly eventSource?: typeof EventSource | null;
}
