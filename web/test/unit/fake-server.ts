/// <reference path="./node-shim.d.ts" />
/**
 * An in-test CivicSync server behind a fetch function: enrollment, token renewal, collections,
 * push (signature check, idempotency with replay, deviceSeq hold queue, capacity rule for
 * appointments, stale changes parked as conflicts), the pull feed with cursors, the outcomes feed,
 * and supervisor resolutions. Faults can be injected: a network failure before the request
 * reaches the server, a response lost after the server acted, an expired token, an invalid cursor.
 */
import { gunzipSync } from 'node:zlib';
import { canonicalize } from '../../src/sync/jcs';
import { mutationSigningInput, tokenSigningInput, verifyText } from '../../src/sync/signing';
import type { CollectionDefinition } from '../../src/sync/api';
import { COLLECTIONS, readJson } from './repo';

type Data = Record<string, unknown>;

export interface WireMutation {
  mutationId: string;
  deviceSeq: number;
  collection: string;
  recordId: string;
  op: 'create' | 'update' | 'delete';
  baseVersion: number;
  data?: Data;
  hlc: string;
  clientTime: string;
  signature?: string;
}

export interface ServerRecord {
  collection: string;
  recordId: string;
  version: number;
  deleted: boolean;
  data?: Data;
  updatedAt: string;
}

export type Result = Record<string, unknown> & { mutationId: string; recordId: string; status: string };

interface Device {
  deviceId: string;
  publicKey: string;
  token: string;
  progress: number;
  held: Map<number, WireMutation>;
}

interface Parked {
  conflictId: string;
  deviceId: string;
  mutation: WireMutation;
  kind: 'conflict' | 'rejected';
  resolved?: boolean;
}

export const TENANT = 'health-lk';

export class FakeServer {
  readonly collections: CollectionDefinition[] = ['appointments', 'clinics', 'subsidy_claims'].map((n) =>
    readJson<CollectionDefinition>(COLLECTIONS + n + '.json'),
  );
  readonly records = new Map<string, ServerRecord>();
  private readonly recordSeq = new Map<string, number>();
  private seq = 0;
  private readonly devices = new Map<string, Device>();
  private readonly byToken = new Map<string, Device>();
  private readonly seen = new Map<string, { content: string; result: Result; deviceId: string }>();
  private readonly outcomes: { seq: number; deviceId: string; result: Result }[] = [];
  private readonly challenges = new Set<string>();
  readonly parked = new Map<string, Parked>();
  private counter = 0;
  now = Date.parse('2026-11-22T08:00:00Z');

  // fault injection
  /** The next n requests fail as if the network were down (nothing reaches the server). */
  offlineRequests = 0;
  /** Paths whose next response is lost after the server acted on the request. */
  private readonly loseNext: string[] = [];
  /** Every authenticated request gets 401 TOKEN_EXPIRED until the device renews. */
  private expired = new Set<string>();
  private readonly revoked = new Set<string>();
  private cursorInvalidOnce: 'CURSOR_INVALID' | 'RESYNC_REQUIRED' | null = null;
  /** While true, every new mutation is held as if an earlier one of its device had not arrived. */
  holdAll = false;
  forbidInbox = false;
  readonly resolveKeys: string[] = [];
  private readonly artificiallyHeld: { d: Device; m: WireMutation; content: string }[] = [];
  /** What each push carried, after decompression: to check retries are byte-identical. */
  readonly pushBodies: string[] = [];
  readonly requests: string[] = [];
  /** The Prefer header of every push, in order ('' when absent). */
  readonly pushPrefers: string[] = [];

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const path = url.pathname;
    this.requests.push((init?.method ?? 'GET') + ' ' + path + url.search);
    if (this.offlineRequests > 0) {
      this.offlineRequests--;
      throw new TypeError('fetch failed (offline)');
    }
    let body: string | undefined;
    if (init?.body !== undefined && init.body !== null) {
      let bytes: Uint8Array;
      if (typeof init.body === 'string') bytes = new TextEncoder().encode(init.body);
      else bytes = new Uint8Array(await new Response(init.body as BodyInit).arrayBuffer());
      const headers = new Headers(init.headers);
      if (headers.get('Content-Encoding') === 'gzip') bytes = gunzipSync(bytes);
      body = new TextDecoder().decode(bytes);
    }
    const headers = new Headers(init?.headers);
    const response = await this.handle(init?.method ?? 'GET', path, url.searchParams, body, headers);
    const lost = this.loseNext.indexOf(path);
    if (lost >= 0) {
      this.loseNext.splice(lost, 1);
      throw new TypeError('connection reset (response lost)');
    }
    return response;
  };

  clearFaults(): void {
    this.loseNext.splice(0);
    this.offlineRequests = 0;
  }

  loseNextResponse(path: string): void {
    this.loseNext.push(path);
  }

  expireToken(deviceId: string): void {
    this.expired.add(deviceId);
  }

  /** Every authenticated request of the device gets 403 DEVICE_REVOKED from now on. */
  revoke(deviceId: string): void {
    this.revoked.add(deviceId);
  }

  /** The next pull with a cursor is refused: CURSOR_INVALID (400), or RESYNC_REQUIRED (410, the server compacted deletions). */
  invalidateCursorOnce(code: 'CURSOR_INVALID' | 'RESYNC_REQUIRED' = 'CURSOR_INVALID'): void {
    this.cursorInvalidOnce = code;
  }

  device(deviceId: string): Device | undefined {
    return this.devices.get(deviceId);
  }

  private json(status: number, value: unknown): Response {
    return new Response(JSON.stringify(value), { status, headers: { 'Content-Type': 'application/json' } });
  }

  private error(status: number, code: string, message: string, field?: string): Response {
    return this.json(status, { error: { code, message, ...(field ? { field } : {}) } });
  }

  private iso(): string {
    return new Date(this.now).toISOString();
  }

  private async handle(method: string, path: string, q: URLSearchParams, body: string | undefined, headers: Headers): Promise<Response> {
    if (method === 'POST' && path === '/v1/devices/enroll') {
      const r = JSON.parse(body!) as { enrollmentCode: string; deviceName: string; publicKey: string };
      if (!/^[A-Za-z0-9_-]{43}$/.test(r.publicKey)) return this.error(400, 'INVALID_REQUEST', 'bad key', '/publicKey');
      if (r.enrollmentCode !== 'GOOD-CODE') return this.error(403, 'ENROLLMENT_CODE_INVALID', 'unknown code');
      const deviceId = '3f2a1b0c-9d8e-4f7a-a6b5-' + (++this.counter).toString(16).padStart(12, '0');
      const d: Device = { deviceId, publicKey: r.publicKey, token: 'csd_' + deviceId, progress: 0, held: new Map() };
      this.devices.set(deviceId, d);
      this.byToken.set(d.token, d);
      return this.json(201, { deviceId, tenantId: TENANT, userId: 'nurse', token: d.token, expiresAt: new Date(this.now + 86400_000).toISOString() });
    }
    if (method === 'POST' && path === '/v1/devices/challenge') {
      const challenge = 'ch' + (++this.counter).toString().padStart(41, '0');
      this.challenges.add(challenge);
      return this.json(200, { challenge, expiresAt: this.iso() });
    }
    if (method === 'POST' && path === '/v1/devices/token') {
      const r = JSON.parse(body!) as { deviceId: string; challenge: string; signature: string };
      const d = this.devices.get(r.deviceId);
      if (!d) return this.error(404, 'DEVICE_NOT_FOUND', 'no device');
      const known = this.challenges.delete(r.challenge);
      if (!known || !(await verifyText(d.publicKey, tokenSigningInput(TENANT, d.deviceId, r.challenge), r.signature))) {
        return this.error(401, 'CHALLENGE_INVALID', 'bad challenge', '/signature');
      }
      this.byToken.delete(d.token);
      d.token = 'csd_' + d.deviceId + '_' + ++this.counter;
      this.byToken.set(d.token, d);
      this.expired.delete(d.deviceId);
      return this.json(200, { token: d.token, expiresAt: new Date(this.now + 86400_000).toISOString() });
    }
    const auth = headers.get('Authorization') ?? '';
    const d = this.byToken.get(auth.replace(/^Bearer /, ''));
    if (!d) return this.error(401, 'UNAUTHENTICATED', 'unknown token');
    if (this.revoked.has(d.deviceId)) return this.error(403, 'DEVICE_REVOKED', 'this device was revoked');
    if (this.expired.has(d.deviceId)) return this.error(401, 'TOKEN_EXPIRED', 'the token expired');
    if (method === 'GET' && path === '/v1/collections') return this.json(200, { collections: this.collections });
    if (method === 'POST' && path === '/v1/sync/push') {
      this.pushBodies.push(body!);
      this.pushPrefers.push(headers.get('Prefer') ?? '');
      const req = JSON.parse(body!) as { mutations: WireMutation[] };
      const results: Result[] = [];
      for (const m of req.mutations) results.push(await this.pushOne(d, m));
      if ((headers.get('Prefer') ?? '').includes('return=minimal')) {
        // As the server answers Prefer: return=minimal: results by position, without ids.
        const minimal = results.map(({ mutationId: _m, recordId: _r, ...rest }) => rest);
        return this.json(200, { results: minimal, serverTime: this.iso() });
      }
      return this.json(200, { results, serverTime: this.iso() });
    }
    if (method === 'GET' && path === '/v1/sync/pull') return this.pull(q);
    if (method === 'GET' && path === '/v1/sync/outcomes') {
      const after = q.get('cursor') ? Number(q.get('cursor')) : 0;
      const limit = Number(q.get('limit') ?? 500);
      const mine = this.outcomes.filter((o) => o.deviceId === d.deviceId && o.seq > after);
      const page = mine.slice(0, limit);
      const cursor = page.length > 0 ? page[page.length - 1]!.seq : after;
      return this.json(200, { outcomes: page.map((o) => o.result), cursor: String(cursor), hasMore: mine.length > page.length });
    }
    if (method === 'GET' && path === '/v1/inbox' && this.forbidInbox) return this.error(403, 'FORBIDDEN', 'no resolve grant');
    if (method === 'POST' && path.startsWith('/v1/inbox/') && path.endsWith('/resolve')) {
      const id = path.split('/')[3]!;
      this.resolveKeys.push(headers.get('Idempotency-Key') ?? '');
      const req = JSON.parse(body!) as { resolution: 'keepServer' | 'takeClient' | 'edit'; data?: Data };
      const p = this.parked.get(id);
      if (!p) return this.error(404, 'INBOX_ITEM_NOT_FOUND', 'no item', 'id');
      if (!p.resolved) this.resolve(id, req.resolution, req.data);
      return this.json(200, { item: { id, kind: p.kind, status: 'resolved' } });
    }
    if (method === 'GET' && path === '/v1/admin/stats') return this.json(200, { tenantId: TENANT, since: q.get('since'), devices: 2 });
    if (method === 'GET' && path === '/v1/inbox') {
      return this.json(200, { items: [...this.parked.values()].map((p) => ({ id: p.conflictId, kind: p.kind, status: p.resolved ? 'resolved' : 'open', collection: p.mutation.collection, recordId: p.mutation.recordId })) });
    }
    return this.error(404, 'NOT_FOUND', 'no route ' + method + ' ' + path);
  }

  private pull(q: URLSearchParams): Response {
    const raw = q.get('cursor');
    if (raw !== null && this.cursorInvalidOnce) {
      const code = this.cursorInvalidOnce;
      this.cursorInvalidOnce = null;
      return code === 'RESYNC_REQUIRED'
        ? this.error(410, code, 'changes up to seq 9 were compacted on this server', 'cursor')
        : this.error(400, code, 'the cursor is not valid', 'cursor');
    }
    const after = raw ? Number(raw.replace(/^c/, '')) : 0;
    const limit = Number(q.get('limit') ?? 500);
    const changed = [...this.recordSeq.entries()].filter(([k, s]) => s > after && this.records.has(k)).sort((a, b) => a[1] - b[1]);
    const page = changed.slice(0, limit);
    const cursor = page.length > 0 ? page[page.length - 1]![1] : after;
    const changes = page.map(([key]) => {
      const r = this.records.get(key)!;
      return r.deleted
        ? { collection: r.collection, recordId: r.recordId, version: r.version, op: 'delete', updatedAt: r.updatedAt }
        : { collection: r.collection, recordId: r.recordId, version: r.version, op: 'upsert', data: r.data, updatedAt: r.updatedAt };
    });
    return this.json(200, { changes, cursor: 'c' + cursor, hasMore: changed.length > page.length });
  }

  private def(name: string): CollectionDefinition | undefined {
    return this.collections.find((c) => c.name === name);
  }

  /** Writes a record version (as another device or the records API would), visible to pulls. */
  put(collection: string, recordId: string, data: Data | null): ServerRecord {
    const key = collection + '/' + recordId;
    const prev = this.records.get(key);
    const r: ServerRecord = {
      collection,
      recordId,
      version: (prev?.version ?? 0) + 1,
      deleted: data === null,
      ...(data === null ? {} : { data: structuredClone(data) }),
      updatedAt: this.iso(),
    };
    this.records.set(key, r);
    this.recordSeq.set(key, ++this.seq);
    return r;
  }

  get(collection: string, recordId: string): ServerRecord | undefined {
    return this.records.get(collection + '/' + recordId);
  }

  private async pushOne(d: Device, m: WireMutation): Promise<Result> {
    const { signature, ...content } = m;
    if (!signature || !(await verifyText(d.publicKey, mutationSigningInput(TENANT, d.deviceId, content), signature))) {
      return { mutationId: m.mutationId, recordId: m.recordId, status: 'rejected', error: { code: 'BAD_SIGNATURE', message: 'bad signature' } };
    }
    const canon = canonicalize(content);
    const prior = this.seen.get(m.mutationId);
    if (prior) {
      if (prior.content !== canon) {
        return { mutationId: m.mutationId, recordId: m.recordId, status: 'rejected', error: { code: 'MUTATION_ID_REUSED', message: 'reused' } };
      }
      return { ...prior.result, replayed: true };
    }
    if (this.holdAll) {
      this.artificiallyHeld.push({ d, m, content: canon });
      const result: Result = { mutationId: m.mutationId, recordId: m.recordId, status: 'held', waitingFor: m.deviceSeq };
      this.seen.set(m.mutationId, { content: canon, result, deviceId: d.deviceId });
      return result;
    }
    if (m.deviceSeq > d.progress + 1) {
      d.held.set(m.deviceSeq, m);
      const result: Result = { mutationId: m.mutationId, recordId: m.recordId, status: 'held', waitingFor: d.progress + 1 };
      this.seen.set(m.mutationId, { content: canon, result, deviceId: d.deviceId });
      return result;
    }
    const result = this.decide(d, m);
    this.seen.set(m.mutationId, { content: canon, result, deviceId: d.deviceId });
    if (m.deviceSeq === d.progress + 1) d.progress = m.deviceSeq;
    // Release held mutations whose turn has come; their results go to the outcomes feed.
    for (let next = d.held.get(d.progress + 1); next; next = d.held.get(d.progress + 1)) {
      d.held.delete(next.deviceSeq);
      const r = this.decide(d, next);
      this.seen.set(next.mutationId, { content: canonicalize({ ...next, signature: undefined }), result: r, deviceId: d.deviceId });
      d.progress = next.deviceSeq;
      this.outcomes.push({ seq: ++this.seq, deviceId: d.deviceId, result: r });
    }
    return result;
  }

  private decide(d: Device, m: WireMutation): Result {
    const base = { mutationId: m.mutationId, recordId: m.recordId };
    const reject = (code: string, message: string, field?: string, serverRecord?: ServerRecord): Result => {
      this.parked.set(m.mutationId, { conflictId: m.mutationId, deviceId: d.deviceId, mutation: m, kind: 'rejected' });
      return { ...base, status: 'rejected', error: { code, message, ...(field ? { field } : {}) }, ...(serverRecord ? { serverRecord } : {}) };
    };
    const def = this.def(m.collection);
    if (!def) return reject('UNKNOWN_COLLECTION', 'unknown collection');
    const cur = this.get(m.collection, m.recordId);
    if (m.op === 'create') {
      if (cur) return reject('RECORD_EXISTS', 'exists', '/recordId');
      const data = withDefaults(def, m.data ?? {});
      const full = this.capacity(m.collection, m.recordId, data);
      if (full) return reject('CAPACITY_EXCEEDED', full, '/data/slotStart');
      const r = this.put(m.collection, m.recordId, data);
      return { ...base, status: 'applied', version: r.version };
    }
    if (!cur) return reject('RECORD_NOT_FOUND', 'record does not exist', '/recordId');
    if (m.baseVersion > cur.version) return reject('INVALID_BASE_VERSION', 'too new', '/baseVersion');
    if (m.baseVersion < cur.version) {
      if (cur.deleted) return reject('RECORD_DELETED', 'deleted meanwhile', '/recordId', cur);
      const conflictId = 'c0000000-0000-4000-8000-' + (++this.counter).toString(16).padStart(12, '0');
      this.parked.set(conflictId, { conflictId, deviceId: d.deviceId, mutation: m, kind: 'conflict' });
      return {
        ...base,
        status: 'conflict',
        error: { code: 'VERSION_CONFLICT', message: 'parked', field: '/baseVersion' },
        serverRecord: cur,
        conflictId,
        conflictFields: Object.keys(m.data ?? {}),
      };
    }
    if (cur.deleted) return reject('RECORD_DELETED', 'deleted', '/recordId');
    if (m.op === 'delete') {
      const r = this.put(m.collection, m.recordId, null);
      return { ...base, status: 'applied', version: r.version };
    }
    const next = patched(cur.data ?? {}, m.data ?? {});
    const rule = (def.policy as { fields?: Record<string, { kind: string; transitions?: Record<string, string[]> }> } | undefined)?.fields?.['status'];
    if (rule?.kind === 'monotonic' && cur.data?.['status'] !== next['status']) {
      const from = String(cur.data?.['status']);
      const to = String(next['status']);
      const ok = (rule.transitions?.[from] ?? []).some((x) => x === to || (rule.transitions?.[x] ?? []).includes(to));
      if (!ok) return reject('INVALID_TRANSITION', `status cannot move from ${from} to ${to}`, '/data/status');
    }
    const r = this.put(m.collection, m.recordId, next);
    return { ...base, status: 'applied', version: r.version };
  }

  private capacity(collection: string, recordId: string, data: Data): string | undefined {
    if (collection !== 'appointments') return undefined;
    const taken = [...this.records.values()].filter(
      (r) =>
        r.collection === 'appointments' &&
        r.recordId !== recordId &&
        !r.deleted &&
        r.data?.['clinicId'] === data['clinicId'] &&
        r.data?.['slotStart'] === data['slotStart'] &&
        r.data?.['status'] !== 'cancelled' &&
        r.data?.['status'] !== 'no_show',
    ).length;
    return taken >= 1 ? `The ${String(data['slotStart'])} slot at ${String(data['clinicId'])} is full (1 booking(s) per slot). Please choose another time.` : undefined;
  }

  /** Decides the mutations held by holdAll, in order; their results go to the outcomes feed. */
  releaseHeld(): void {
    this.holdAll = false;
    for (const { d, m, content } of this.artificiallyHeld.splice(0)) {
      const r = this.decide(d, m);
      this.seen.set(m.mutationId, { content, result: r, deviceId: d.deviceId });
      d.progress = Math.max(d.progress, m.deviceSeq);
      this.outcomes.push({ seq: ++this.seq, deviceId: d.deviceId, result: r });
    }
  }

  /** A supervisor resolves a parked or refused change; the device gets the outcome. */
  resolve(id: string, resolution: 'keepServer' | 'takeClient' | 'edit', data?: Data): ServerRecord | undefined {
    const p = this.parked.get(id);
    if (!p || p.resolved) throw new Error('no open item ' + id);
    p.resolved = true;
    const m = p.mutation;
    const cur = this.get(m.collection, m.recordId);
    let record: ServerRecord | undefined;
    if (resolution === 'takeClient') record = this.put(m.collection, m.recordId, m.op === 'delete' ? null : patched(cur?.data ?? {}, m.data ?? {}));
    else if (resolution === 'edit') record = this.put(m.collection, m.recordId, data ?? {});
    else if (cur && !cur.deleted) record = this.put(m.collection, m.recordId, cur.data ?? {});
    const result: Result = record
      ? {
          mutationId: m.mutationId,
          recordId: m.recordId,
          status: 'merged',
          version: record.version,
          record,
          overriddenFields: resolution === 'takeClient' ? [] : Object.keys(m.data ?? {}),
          resolution,
        }
      : { mutationId: m.mutationId, recordId: m.recordId, status: 'rejected', error: { code: 'CAPACITY_EXCEEDED', message: 'full' }, resolution: 'keepServer' };
    this.seen.get(m.mutationId)!.result = result;
    this.outcomes.push({ seq: ++this.seq, deviceId: p.deviceId, result });
    return record;
  }
}

function withDefaults(def: CollectionDefinition, data: Data): Data {
  const out = structuredClone(data);
  const props = (def.schema['properties'] ?? {}) as Record<string, { default?: unknown }>;
  for (const [k, p] of Object.entries(props)) if ('default' in p && !(k in out)) out[k] = p.default;
  return out;
}

function patched(cur: Data, patch: Data): Data {
  const out = structuredClone(cur);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = structuredClone(v);
  }
  return out;
}
