/**
 * Record rules shared by writes, push answers and pulls: defaults, update patches, the rebase of
 * pending changes onto the server's state (a port of the Java SDK's Rebase and MutationRules), and
 * local checks of monotonic fields.
 */
import type { CollectionDefinition, JsonSchema } from './api';
import { CivicSyncError } from './api';
import { jsonEqual } from './jcs';

export type Data = Record<string, unknown>;
export type Op = 'create' | 'update' | 'delete';

/** A mutation as the wire carries it (mutation.schema.json). */
export interface Mutation {
  readonly mutationId: string;
  readonly deviceSeq: number;
  readonly collection: string;
  readonly recordId: string;
  readonly op: Op;
  readonly baseVersion: number;
  readonly data?: Data;
  readonly hlc: string;
  readonly clientTime: string;
  readonly signature?: string;
}

export function clone<T>(x: T): T {
  return x === undefined || x === null ? x : (JSON.parse(JSON.stringify(x)) as T);
}

/** A copy of data with the schema's top-level defaults filled in where absent. */
export function withDefaults(schema: JsonSchema | undefined, data: Data): Data {
  const out = clone(data);
  const props = (schema?.['properties'] ?? {}) as Record<string, { default?: unknown }>;
  for (const [k, p] of Object.entries(props)) {
    if (p && typeof p === 'object' && 'default' in p && !(k in out)) out[k] = clone(p.default);
  }
  return out;
}

/** An update's fields applied: each present field replaces the old value, null removes it. */
export function patched(current: Data, patch: Data): Data {
  const out = clone(current);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (v !== undefined) out[k] = clone(v);
  }
  return out;
}

/** The first patch's fields followed by the second's (for folding updates). */
export function mergePatch(first: Data, second: Data): Data {
  return { ...clone(first), ...clone(second) };
}

/** What one mutation does to the data it is applied to (null: no record). */
export function applyMutation(def: CollectionDefinition | undefined, current: Data | null, m: Mutation): Data | null {
  switch (m.op) {
    case 'create':
      return withDefaults(def?.schema, m.data ?? {});
    case 'update':
      return current === null ? null : patched(current, m.data ?? {});
    case 'delete':
      return null;
  }
}

export function replay(def: CollectionDefinition | undefined, server: Data | null, mutations: readonly Mutation[]): Data | null {
  let x = server === null ? null : clone(server);
  for (const m of mutations) x = applyMutation(def, x, m);
  return x;
}

/** Local edits carried by no outbox entry: nothing, a delete, a field patch or whole new data. */
export type Diff = { kind: 'none' } | { kind: 'delete' } | { kind: 'patch'; fields: Data } | { kind: 'replace'; data: Data };

export const NO_DIFF: Diff = { kind: 'none' };

export function diff(from: Data | null, to: Data | null): Diff {
  if (from === null && to === null) return NO_DIFF;
  if (from !== null && to !== null && jsonEqual(from, to)) return NO_DIFF;
  if (to === null) return { kind: 'delete' };
  if (from === null) return { kind: 'replace', data: clone(to) };
  const fields: Data = {};
  for (const [k, v] of Object.entries(to)) if (!jsonEqual(v, from[k])) fields[k] = clone(v);
  for (const k of Object.keys(from)) if (!(k in to)) fields[k] = null;
  return { kind: 'patch', fields };
}

export function applyDiff(x: Data | null, d: Diff): Data | null {
  switch (d.kind) {
    case 'delete':
      return null;
    case 'replace':
      return clone(d.data);
    case 'patch':
      return x === null ? null : patched(x, d.fields);
    default:
      return x === null ? null : clone(x);
  }
}

interface FieldRule {
  readonly kind?: string;
  readonly transitions?: Record<string, readonly string[]>;
}

function fieldRules(def: CollectionDefinition): Record<string, FieldRule> {
  const policy = def.policy as { fields?: Record<string, FieldRule> } | undefined;
  return policy?.fields ?? {};
}

/** Whether `to` can be reached from `from` by one or more declared transitions. */
export function reachable(transitions: Record<string, readonly string[]>, from: string, to: string): boolean {
  const seen = new Set<string>([from]);
  const queue = [from];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const next of transitions[at] ?? []) {
      if (next === to) return true;
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}

/**
 * Checks the moves of monotonic fields from the record as the user saw it to the new one, as the
 * server would (INVALID_TRANSITION): forward along declared transitions only, never removed.
 */
export function checkMonotonic(def: CollectionDefinition, before: Data, after: Data): void {
  for (const [field, rule] of Object.entries(fieldRules(def))) {
    if (rule.kind !== 'monotonic') continue;
    const from = before[field];
    const to = after[field];
    if (from === undefined || jsonEqual(from, to)) continue;
    if (to === undefined) {
      throw new CivicSyncError('INVALID_TRANSITION', `${field} cannot be removed`, '/' + field);
    }
    if (typeof from !== 'string' || typeof to !== 'string' || !reachable(rule.transitions ?? {}, from, to)) {
      throw new CivicSyncError('INVALID_TRANSITION', `${field} cannot change from ${String(from)} to ${String(to)}`, '/' + field);
    }
  }
}
