/** The generic screen of any collection the server defines: a form and a list built from its JSON Schema. */
import { useState } from 'preact/hooks';
import type { CollectionDefinition, LocalRecord } from '../sync/api';
import { changesOf, fieldsOf, SchemaForm } from './schema-form';
import { Badge, byField, shownState, problemsOf, RecordNotice, show, useApp, useRecords } from './util';

export function CollectionScreen({ def }: { def: CollectionDefinition }) {
  const { client } = useApp();
  const records = useRecords(def.name);
  const [editing, setEditing] = useState<LocalRecord | undefined>(undefined);
  const [saved, setSaved] = useState('');
  const [query, setQuery] = useState('');
  const title = def.title ?? def.name;

  const create = async (data: Record<string, unknown>) => {
    const problems = client.validate(def.name, data);
    if (problems.length) return byField(problems);
    try {
      await client.create(def.name, data);
    } catch (e) {
      return problemsOf(e);
    }
    setSaved('Saved on this device. It will sync when you are online.');
    return undefined;
  };

  const update = async (data: Record<string, unknown>) => {
    const rec = editing!;
    const problems = client.validate(def.name, data);
    if (problems.length) return byField(problems);
    const changes = changesOf(rec.data, data);
    try {
      if (Object.keys(changes).length) await client.update(def.name, rec.recordId, changes);
    } catch (e) {
      return problemsOf(e);
    }
    setEditing(undefined);
    setSaved('Changes saved on this device.');
    return undefined;
  };

  const q = query.trim().toLowerCase();
  const shown = (records ?? []).filter((r) => !q || JSON.stringify(r.data).toLowerCase().includes(q));
  const fields = fieldsOf(def.schema).map(([n]) => n);

  return (
    <section data-testid="collection-screen" data-collection={def.name}>
      <h2>{title}</h2>
      {def.description ? <p class="muted">{def.description}</p> : null}
      <div class="panel">
        <h3>{editing ? `Edit record` : `New record`}</h3>
        {saved ? <p class="ok-msg" role="status" data-testid="form-saved">{saved}</p> : null}
        {editing ? (
          <SchemaForm key={editing.recordId} schema={def.schema} initial={editing.data} collection={def.name} submitLabel="Save changes" onSubmit={update} onCancel={() => setEditing(undefined)} />
        ) : (
          <SchemaForm key="new" schema={def.schema} collection={def.name} submitLabel="Save" onSubmit={create} />
        )}
      </div>
      <h3>Records</h3>
      <label for="rec-search">Search</label>
      <input id="rec-search" type="search" data-testid="record-search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
      {records === undefined ? <p class="muted">Loading…</p> : null}
      {records && shown.length === 0 ? <p class="muted" data-testid="record-empty">No records yet.</p> : null}
      <ul class="plain" data-testid="record-list">
        {shown.map((r) => { const state = shownState(r, client); return (
          <li key={r.recordId} class={`card${r.deleted ? ' gone' : ''}`} data-testid="record" data-record-id={r.recordId} data-state={state} data-library-state={r.state} data-deleted={String(r.deleted)}>
            <div class="rec-head">
              <strong class="gone-text" data-testid={`value-${fields[0]}`}>{show(r.data[fields[0]]) || r.recordId.slice(0, 8)}</strong>
              <Badge state={state} />
            </div>
            <div class="gone-text muted">
              {fields.slice(1).filter((f) => r.data[f] !== undefined).map((f) => (
                <span key={f}>{f}: <span data-testid={`value-${f}`}>{show(r.data[f])}</span>. </span>
              ))}
            </div>
            <RecordNotice record={r} />
            {!r.deleted ? (
              <div class="actions">
                <button class="small alt" data-testid="record-edit" onClick={() => { setSaved(''); setEditing(r); scrollTo(0, 0); }}>Edit</button>
              </div>
            ) : null}
          </li>
        ); })}
      </ul>
    </section>
  );
}
