/** Supervisor pages: the inbox (list, side-by-side compare, resolve) and nothing else; loaded on demand. */
import { useState } from 'preact/hooks';
import type { InboxItem } from '../sync/api';
import { fieldsOf, SchemaForm } from './schema-form';
import { byField, messageOf, show, useApp, useAsync } from './util';

type Status = 'open' | 'resolved';

export function InboxScreen({ itemId }: { itemId?: string }) {
  const { client } = useApp();
  const [status, setStatus] = useState<Status>('open');
  const [reload, setReload] = useState(0);
  const [items, error] = useAsync(() => client.server.inbox({ status: itemId ? undefined : status, limit: 200 }), [client, status, reload, itemId]);

  if (itemId) {
    const item = items?.find((i) => i.id === itemId);
    if (error) return <p class="form-err" data-testid="inbox-error">{error}</p>;
    if (!items) return <p class="muted">Loading…</p>;
    if (!item) return <p class="form-err" data-testid="inbox-error">This item is not in your inbox. <a href="#/inbox">Back to the inbox</a></p>;
    return <ItemView item={item} onDone={() => setReload(reload + 1)} />;
  }

  return (
    <section data-testid="inbox-screen">
      <h2>Supervisor inbox</h2>
      <div class="row end">
        <div>
          <label for="ib-status">Show</label>
          <select id="ib-status" data-testid="inbox-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as Status)}>
            <option value="open">Open items</option>
            <option value="resolved">Resolved items</option>
          </select>
        </div>
        <div><button class="alt" data-testid="inbox-refresh" onClick={() => setReload(reload + 1)}>Refresh</button></div>
      </div>
      {error ? <p class="form-err" data-testid="inbox-error">{error}</p> : null}
      {items && items.length === 0 ? <p class="muted" data-testid="inbox-empty">Nothing to look at.</p> : null}
      <ul class="plain" data-testid="inbox-list">
        {(items ?? []).map((i) => (
          <li key={i.id} class="card" data-testid="inbox-item" data-item-id={i.id} data-record-id={i.recordId} data-kind={i.kind} data-status={i.status}>
            <div class="rec-head">
              <strong>{i.kind === 'conflict' ? 'Conflict' : i.kind === 'rejected' ? 'Rejected change' : 'Forced through'}</strong>
              <span class="muted">{i.collection}</span>
            </div>
            <p class="muted tight">
              {summary(i)} · from {String(detail(i).deviceName ?? i.deviceId ?? 'a device')} · {String(i.createdAt ?? '')}
            </p>
            <a class="btn" href={`#/inbox/${i.id}`} data-testid="inbox-open">Open</a>
          </li>
        ))}
      </ul>
    </section>
  );
}

function detail(i: InboxItem): Record<string, unknown> {
  return (i.detail ?? {}) as Record<string, unknown>;
}

function dataOf(x: unknown): Record<string, unknown> | undefined {
  if (!x || typeof x !== 'object') return undefined;
  const d = (x as { data?: unknown }).data;
  return d && typeof d === 'object' ? (d as Record<string, unknown>) : undefined;
}

function summary(i: InboxItem): string {
  const d = detail(i);
  const err = d.error as { code?: string; message?: string } | undefined;
  if (err) return err.message ?? err.code ?? 'rejected';
  const cf = d.conflictFields;
  if (Array.isArray(cf) && cf.length) return `Changed on both sides: ${cf.join(', ')}`;
  const name = dataOf(d.server)?.patientName ?? dataOf(d.client)?.patientName;
  return name ? String(name) : i.recordId;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function ItemView({ item, onDone }: { item: InboxItem; onDone: () => void }) {
  const { client } = useApp();
  const d = detail(item);
  const base = dataOf(d.base);
  const server = dataOf(d.server);
  const clientData = dataOf(d.client) ?? {};
  const op = String((d.client as { op?: string } | undefined)?.op ?? '');
  const conflictFields = Array.isArray(d.conflictFields) ? (d.conflictFields as string[]) : [];
  const def = client.collections().find((c) => c.name === item.collection);
  const names = [...new Set([...(def ? fieldsOf(def.schema).map(([n]) => n) : []), ...Object.keys(base ?? {}), ...Object.keys(server ?? {}), ...Object.keys(clientData)])];
  const err = d.error as { code?: string; message?: string } | undefined;
  const open = item.status === 'open';

  const [resolution, setResolution] = useState<'keepServer' | 'takeClient' | 'edit'>('takeClient');
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState('');
  const [error, setError] = useState('');

  const resolve = async (data?: Record<string, unknown>) => {
    setBusy(true);
    setError('');
    try {
      await client.server.resolve(item.id, { resolution, ...(data ? { data } : {}), ...(comment.trim() ? { comment: comment.trim() } : {}) });
      setResult('Resolved. Every device gets the decision with its next sync.');
      client.syncNow().catch(() => undefined);
      onDone();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
    return undefined;
  };

  // The client's value of a field: what its change sent, or (for an update) unchanged from its base.
  const clientValue = (f: string): [unknown, boolean] => (op === 'delete' ? [undefined, true] : f in clientData ? [clientData[f], true] : [base?.[f], false]);

  return (
    <section data-testid="inbox-item-view" data-item-id={item.id} data-record-id={item.recordId} data-kind={item.kind}>
      <p><a href="#/inbox" data-testid="inbox-back">← Inbox</a></p>
      <h2>{item.kind === 'conflict' ? 'Conflict' : item.kind === 'rejected' ? 'Rejected change' : 'Change forced through'} in {def?.title ?? item.collection}</h2>
      <p class="muted">
        Record {item.recordId} · from {String(d.deviceName ?? item.deviceId ?? 'a device')} · {String(item.createdAt ?? '')}
        {op ? ` · the device's change: ${op}` : ''}
      </p>
      {err ? <p class="form-err" data-testid="inbox-item-error">{err.code ? `${err.code}: ` : ''}{err.message}</p> : null}
      {conflictFields.length ? <p>Changed on both sides: <strong data-testid="conflict-fields">{conflictFields.join(', ')}</strong></p> : null}
      <div class="scroll">
        <table class="compare" data-testid="inbox-compare">
          <caption class="muted">Highlighted: differs from the base version. Bold: changed on both sides.</caption>
          <thead>
            <tr><th scope="col">Field</th><th scope="col">Base{d.base ? '' : ' (unknown)'}</th><th scope="col">Server now</th><th scope="col">This device's change</th></tr>
          </thead>
          <tbody>
            {names.map((f) => {
              const [cv, sent] = clientValue(f);
              const sChanged = base !== undefined && server !== undefined && !same(base[f], server[f]);
              const cChanged = sent && !same(base?.[f], cv);
              const differs = (server !== undefined && sent && !same(server[f], cv)) || conflictFields.includes(f);
              return (
                <tr key={f} data-testid="compare-row" data-field={f} data-differs={String(differs)} class={`${differs ? 'differs' : ''}${conflictFields.includes(f) ? ' conflicting' : ''}`}>
                  <th scope="row">{f}</th>
                  <td data-testid="compare-base">{show(base?.[f])}</td>
                  <td data-testid="compare-server" class={sChanged ? 'changed' : ''}>{server ? show(server[f]) : <em>none</em>}</td>
                  <td data-testid="compare-client" class={cChanged ? 'changed' : ''}>{sent ? show(cv) : <span class="muted">(unchanged) {show(cv)}</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {item.resolution ? (
        <p class="ok-msg" data-testid="inbox-resolution">Resolved: {show((item.resolution as { resolution?: string }).resolution)} {show((item.resolution as { comment?: string }).comment)}</p>
      ) : null}
      {result ? <p class="ok-msg" role="status" data-testid="resolve-result">{result} <a href="#/inbox">Back to the inbox</a></p> : null}
      {open && !result ? (
        <div class="panel">
          <h3 class="mt0">Decide</h3>
          <fieldset class="bare">
            <legend class="muted">Which version should stand?</legend>
            {([
              ['keepServer', 'Keep the server version'],
              ['takeClient', "Take the device's change"],
              ['edit', 'Edit: write the record myself'],
            ] as const).map(([v, label]) => (
              <label class="choice">
                <input type="radio" name="resolution" value={v} checked={resolution === v} data-testid={`resolve-${v}`} onChange={() => setResolution(v)} />
                {label}
              </label>
            ))}
          </fieldset>
          <label for="rs-comment">Comment (why)</label>
          <textarea id="rs-comment" rows={2} data-testid="resolve-comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
          {error ? <p class="form-err" role="alert" data-testid="resolve-error">{error}</p> : null}
          {resolution === 'edit' && def ? (
            <SchemaForm
              schema={def.schema}
              initial={server ?? { ...(base ?? {}), ...clientData }}
              collection={def.name}
              testid="resolve-edit-form"
              submitTestid="resolve-submit"
              submitLabel="Resolve with this record"
              onSubmit={async (data) => {
                const problems = client.validate(def.name, data);
                if (problems.length) return byField(problems);
                return resolve(data);
              }}
            />
          ) : (
            <div class="actions">
              <button disabled={busy} data-testid="resolve-submit" onClick={() => resolve()}>Resolve</button>
            </div>
          )}
        </div>
      ) : null}
    </section>
  );
}
