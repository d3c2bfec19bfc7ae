/**
 * A generic form built from a collection's JSON Schema (string, number, integer, boolean, enum,
 * date-time, date, arrays of strings; anything else as JSON text), so that a new collection needs
 * no new client code.
 */
import { useState } from 'preact/hooks';
import type { JsonSchema } from '../sync/api';
import { FieldError, localParts, messageOf, type Problems, show, toRfc3339 } from './util';

export interface Prop {
  readonly type?: string | readonly string[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly format?: string;
  readonly items?: Prop;
  readonly title?: string;
  readonly description?: string;
  readonly default?: unknown;
  readonly readOnly?: boolean;
}

type Kind = 'enum' | 'datetime' | 'date' | 'number' | 'integer' | 'boolean' | 'strings' | 'string' | 'json';

export function fieldsOf(schema: JsonSchema): [string, Prop][] {
  const props = (schema.properties ?? {}) as Record<string, Prop>;
  return Object.entries(props);
}

export function requiredOf(schema: JsonSchema): string[] {
  return Array.isArray(schema.required) ? (schema.required as string[]) : [];
}

function typeOf(p: Prop): string | undefined {
  const t = p.type;
  return Array.isArray(t) ? t.find((x) => x !== 'null') : (t as string | undefined);
}

export function kindOf(p: Prop): Kind {
  if (Array.isArray(p.enum)) return 'enum';
  const t = typeOf(p);
  if (t === 'string') return p.format === 'date-time' ? 'datetime' : p.format === 'date' ? 'date' : 'string';
  if (t === 'number' || t === 'integer' || t === 'boolean') return t;
  if (t === 'array' && p.items && typeOf(p.items) === 'string' && !p.items.enum) return 'strings';
  if (t === undefined && p.format === 'date-time') return 'datetime';
  return t === undefined || t === 'string' ? 'string' : 'json';
}

type Raw = Record<string, string | boolean>;

function toRaw(p: Prop, v: unknown): string | boolean {
  if (v === undefined || v === null) return kindOf(p) === 'boolean' ? false : '';
  switch (kindOf(p)) {
    case 'boolean': return v === true;
    case 'enum': return String((p.enum ?? []).findIndex((e) => JSON.stringify(e) === JSON.stringify(v)));
    case 'datetime': { const { date, time } = localParts(v); return date ? `${date}T${time}` : String(v); }
    case 'strings': return Array.isArray(v) ? v.join('\n') : String(v);
    case 'json': return JSON.stringify(v, null, 1);
    default: return String(v);
  }
}

/** The value for the record, or undefined when the input is empty. Unparseable input is kept as text so validation names it. */
function fromRaw(p: Prop, raw: string | boolean): unknown {
  const k = kindOf(p);
  if (k === 'boolean') return raw === true;
  const s = String(raw);
  if (s.trim() === '') return undefined;
  switch (k) {
    case 'enum': return (p.enum ?? [])[Number(s)];
    case 'number': case 'integer': { const n = Number(s); return Number.isFinite(n) ? n : s; }
    case 'datetime': { const [d, t] = s.split('T'); return d && t ? toRfc3339(d, t.slice(0, 5)) : s; }
    case 'strings': return s.split('\n').map((x) => x.trim()).filter(Boolean);
    case 'json': try { return JSON.parse(s); } catch { return s; }
    default: return s;
  }
}

/** The record data the form holds: fields left empty are absent. Members the schema does not declare are kept from `initial`. */
export function formData(schema: JsonSchema, raw: Raw, initial: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const declared = fieldsOf(schema);
  const names = new Set(declared.map(([n]) => n));
  for (const [k, v] of Object.entries(initial)) if (!names.has(k)) out[k] = v;
  for (const [name, p] of declared) {
    const v = fromRaw(p, raw[name] ?? '');
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Top-level changes from `before` to `after` (null removes a field), for update(). */
export function changesOf(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(after)) if (JSON.stringify(before[k]) !== JSON.stringify(v)) out[k] = v;
  for (const k of Object.keys(before)) if (!(k in after)) out[k] = null;
  return out;
}

export function initialRaw(schema: JsonSchema, initial: Record<string, unknown> | undefined): Raw {
  const raw: Raw = {};
  for (const [name, p] of fieldsOf(schema)) raw[name] = toRaw(p, initial ? initial[name] : p.default);
  return raw;
}

export interface SchemaFormProps {
  readonly schema: JsonSchema;
  /** The record data to start from; absent for a new record (schema defaults are filled in). */
  readonly initial?: Record<string, unknown>;
  readonly submitLabel: string;
  /** Gets the form's data; returns problems to show next to the fields, or nothing when it worked. */
  readonly onSubmit: (data: Record<string, unknown>) => Promise<Problems | undefined>;
  readonly onCancel?: () => void;
  readonly testid?: string;
  readonly submitTestid?: string;
  readonly collection?: string;
}

export function SchemaForm(props: SchemaFormProps) {
  const { schema } = props;
  const [raw, setRaw] = useState<Raw>(() => initialRaw(schema, props.initial));
  const [problems, setProblems] = useState<Problems>({});
  const [busy, setBusy] = useState(false);
  const required = requiredOf(schema);
  const set = (name: string, v: string | boolean) => setRaw({ ...raw, [name]: v });

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const found = await props.onSubmit(formData(schema, raw, props.initial ?? {}));
      setProblems(found ?? {});
      if (!found && !props.initial) setRaw(initialRaw(schema, undefined));
    } catch (err) {
      setProblems({ '': [messageOf(err)] });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} noValidate data-testid={props.testid ?? 'generic-form'} data-collection={props.collection}>
      <FieldError problems={problems} name="" />
      {fieldsOf(schema).map(([name, p]) => {
        const k = kindOf(p);
        const id = `f-${name}`;
        const common = {
          id,
          name,
          'data-testid': `field-${name}`,
          'aria-invalid': problems[name] ? ('true' as const) : undefined,
          'aria-describedby': problems[name] ? `err-${name}` : undefined,
          'aria-required': required.includes(name) ? ('true' as const) : undefined,
        };
        const value = raw[name];
        let input;
        if (k === 'boolean') {
          input = <input type="checkbox" {...common} checked={value === true} onChange={(e) => set(name, e.currentTarget.checked)} />;
        } else if (k === 'enum') {
          input = (
            <select {...common} value={String(value)} onChange={(e) => set(name, e.currentTarget.value)}>
              <option value="">—</option>
              {(p.enum ?? []).map((opt, i) => <option value={String(i)}>{show(opt)}</option>)}
            </select>
          );
        } else if (k === 'strings' || k === 'json') {
          input = <textarea {...common} rows={3} value={String(value)} onInput={(e) => set(name, e.currentTarget.value)} />;
        } else {
          const type = k === 'datetime' ? 'datetime-local' : k === 'date' ? 'date' : k === 'number' || k === 'integer' ? 'number' : 'text';
          input = (
            <input
              {...common}
              type={type}
              step={k === 'number' ? 'any' : k === 'integer' ? '1' : undefined}
              inputMode={k === 'number' ? 'decimal' : k === 'integer' ? 'numeric' : undefined}
              value={String(value)}
              onInput={(e) => set(name, e.currentTarget.value)}
            />
          );
        }
        return (
          <div key={name}>
            <label for={id}>
              {p.title ?? name}
              {required.includes(name) ? ' *' : ''}
              {k === 'strings' ? <span class="muted"> (one per line)</span> : null}
            </label>
            {p.description ? <p class="muted">{p.description}</p> : null}
            {input}
            <FieldError problems={problems} name={name} />
          </div>
        );
      })}
      <div class="actions">
        <button type="submit" disabled={busy} data-testid={props.submitTestid ?? 'generic-submit'}>
          {props.submitLabel}
        </button>
        {props.onCancel ? (
          <button type="button" class="alt" onClick={props.onCancel} data-testid="form-cancel">Cancel</button>
        ) : null}
      </div>
    </form>
  );
}
