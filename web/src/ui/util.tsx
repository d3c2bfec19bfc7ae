import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { CivicSyncWeb, LocalRecord, RecordState, ValidationProblem } from '../sync/api';

/** The client and a revision number that grows on every change the library reports. */
export interface AppState {
  readonly client: CivicSyncWeb;
  readonly rev: number;
}

export const AppCtx = createContext<AppState>(null as unknown as AppState);
export const useApp = (): AppState => useContext(AppCtx);

/** Runs fn again whenever one of deps changes; keeps the previous value while the next one loads. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): [T | undefined, string | undefined] {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    let live = true;
    fn().then(
      (v) => { if (live) { setValue(v); setError(undefined); } },
      (e) => { if (live) setError(messageOf(e)); },
    );
    return () => { live = false; };
  }, deps);
  return [value, error];
}

/** Every record of a collection, reloaded after each change. */
export function useRecords(collection: string): LocalRecord[] | undefined {
  const { client, rev } = useApp();
  return useAsync(() => client.list(collection), [client, collection, rev])[0];
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Problems keyed by top-level field name ('' for the record as a whole). */
export type Problems = Record<string, string[]>;

export function byField(problems: readonly ValidationProblem[]): Problems {
  const out: Problems = {};
  for (const p of problems) {
    const key = fieldOf(p.field);
    (out[key] ??= []).push(p.message);
  }
  return out;
}

export function fieldOf(pointer: string | undefined): string {
  if (!pointer) return '';
  const seg = pointer.replace(/^\/(data\/)?/, '').split('/')[0];
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** A problem list as turned from a thrown error (CivicSyncError has code, message and field). */
export function problemsOf(e: unknown): Problems {
  const field = (e as { field?: string } | undefined)?.field;
  return { [fieldOf(field)]: [messageOf(e)] };
}

export function FieldError({ problems, name }: { problems: Problems; name: string }) {
  const list = problems[name];
  if (!list || list.length === 0) return null;
  return (
    <p class="err" id={`err-${name}`} role="alert" data-testid={`field-error-${name || 'form'}`}>
      {list.join(' ')}
    </p>
  );
}

/**
 * The state to show: the library's, except that a change sent without an answer (the library's
 * 'syncing', e.g. a push that failed while offline) shows as 'pending' unless a sync is running now.
 */
export function shownState(r: LocalRecord, client: CivicSyncWeb): RecordState {
  return r.state === 'syncing' && client.status().phase !== 'syncing' ? 'pending' : r.state;
}

export function Badge({ state }: { state: RecordState }) {
  return (
    <span class={`badge ${state}`} data-testid="record-badge" data-state={state} title={`Sync state: ${state}`}>
      {state}
    </span>
  );
}

/** The per-record notice (a rejection of a create that was rolled back, a conflict) with a dismiss button. */
export function RecordNotice({ record }: { record: LocalRecord }) {
  const { client } = useApp();
  const n = record.notice;
  if (!n) return null;
  return (
    <div class="rec-notice" data-testid="record-notice" data-kind={n.kind} role="status">
      <span data-testid="record-notice-message">{n.message}</span>{' '}
      <button class="small alt" data-testid="record-notice-dismiss" onClick={() => client.dismissNotice(n.id)}>
        Dismiss
      </button>
    </div>
  );
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Date (YYYY-MM-DD) and time (HH:MM) on this device's clock, as RFC 3339 with the device's UTC offset. */
export function toRfc3339(date: string, time: string): string {
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = time.split(':').map(Number);
  const t = new Date(y, m - 1, d, hh, mm, 0, 0);
  return localRfc3339(t);
}

export function localRfc3339(t: Date): string {
  const off = -t.getTimezoneOffset();
  const a = Math.abs(off);
  return (
    `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}` +
    `${off >= 0 ? '+' : '-'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`
  );
}

/** The local date and time of an RFC 3339 instant, for date and time inputs. */
export function localParts(value: unknown): { date: string; time: string } {
  const t = new Date(String(value));
  if (Number.isNaN(t.getTime())) return { date: '', time: '' };
  return { date: `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`, time: `${pad(t.getHours())}:${pad(t.getMinutes())}` };
}

export function today(): string {
  return localParts(new Date().toISOString()).date;
}

export function show(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join('; ');
  return JSON.stringify(v);
}
