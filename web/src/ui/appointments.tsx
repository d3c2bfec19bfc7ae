/** The clinic workflow on the appointments collection: book, reschedule, check in, complete, cancel, notes; list by day and clinic; search. */
import { useState } from 'preact/hooks';
import type { LocalRecord } from '../sync/api';
import { Badge, byField, shownState, FieldError, localParts, problemsOf, type Problems, RecordNotice, today, toRfc3339, useApp, useAsync, useRecords } from './util';

const C = 'appointments';
const DEMO_CLINICS = ['clinic-badulla-03', 'clinic-bandarawela-01'];
const LAST_CLINIC = 'civicsync.lastClinic';

function storedClinic(): string {
  try { return localStorage.getItem(LAST_CLINIC) ?? ''; } catch { return ''; }
}

export function AppointmentsScreen() {
  const { client, rev } = useApp();
  const records = useRecords(C);
  const [clinicRecords] = useAsync(async () => (client.collections().some((c) => c.name === 'clinics') ? client.list('clinics') : []), [client, rev]);
  const [day, setDay] = useState('');
  const [clinic, setClinic] = useState('');
  const [search, setSearch] = useState('');

  const clinics = [...new Set([
    ...DEMO_CLINICS,
    ...(clinicRecords ?? []).map((r) => String(r.data.clinicId ?? '')),
    ...(records ?? []).map((r) => String(r.data.clinicId ?? '')),
  ].filter(Boolean))].sort();

  const q = search.trim().toLowerCase();
  const shown = (records ?? [])
    .filter((r) => !day || localParts(r.data.slotStart).date === day)
    .filter((r) => !clinic || r.data.clinicId === clinic)
    .filter((r) => !q || String(r.data.patientName ?? '').toLowerCase().includes(q))
    .sort((a, b) => slotTime(a) - slotTime(b) || String(a.data.patientName).localeCompare(String(b.data.patientName)));
  const days: [string, LocalRecord[]][] = [];
  for (const r of shown) {
    const d = localParts(r.data.slotStart).date || 'No date';
    const last = days[days.length - 1];
    if (last && last[0] === d) last[1].push(r);
    else days.push([d, [r]]);
  }

  return (
    <section data-testid="appointments-screen">
      <h2>Clinic appointments</h2>
      <BookForm clinics={clinics} />
      <h3>Appointments</h3>
      <div class="row" role="search">
        <div>
          <label for="flt-day">Day</label>
          <input id="flt-day" type="date" data-testid="filter-day" value={day} onInput={(e) => setDay(e.currentTarget.value)} />
        </div>
        <div>
          <label for="flt-clinic">Clinic</label>
          <select id="flt-clinic" data-testid="filter-clinic" value={clinic} onChange={(e) => setClinic(e.currentTarget.value)}>
            <option value="">All clinics</option>
            {clinics.map((c) => <option value={c}>{c}</option>)}
          </select>
        </div>
        <div>
          <label for="flt-q">Patient name</label>
          <input id="flt-q" type="search" data-testid="filter-search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </div>
      </div>
      {day || clinic || search ? (
        <button class="small alt mt" data-testid="filter-clear" onClick={() => { setDay(''); setClinic(''); setSearch(''); }}>Show all</button>
      ) : null}
      {records === undefined ? <p class="muted">Loading…</p> : null}
      {records && shown.length === 0 ? <p class="muted" data-testid="appointment-empty">No appointments{records.length ? ' match' : ' yet'}.</p> : null}
      <div data-testid="appointment-list">
        {days.map(([d, list]) => (
          <div key={d}>
            <h3 class="day" data-testid="appointment-day">{dayLabel(d)}</h3>
            <ul class="plain">{list.map((r) => <Appointment key={r.recordId} r={r} />)}</ul>
          </div>
        ))}
      </div>
    </section>
  );
}

function slotTime(r: LocalRecord): number {
  const t = Date.parse(String(r.data.slotStart));
  return Number.isNaN(t) ? 0 : t;
}

function dayLabel(d: string): string {
  const [y, m, dd] = d.split('-').map(Number);
  if (!y) return d;
  return new Date(y, m - 1, dd).toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
}

function BookForm({ clinics }: { clinics: string[] }) {
  const { client } = useApp();
  const [name, setName] = useState('');
  const [phone, setPhone] = useState('');
  const [clinicId, setClinicId] = useState(storedClinic);
  const [date, setDate] = useState(today);
  const [time, setTime] = useState('');
  const [problems, setProblems] = useState<Problems>({});
  const [saved, setSaved] = useState('');

  const submit = async (e: Event) => {
    e.preventDefault();
    setSaved('');
    const data: Record<string, unknown> = { patientName: name.trim(), clinicId: clinicId.trim(), status: 'booked' };
    if (phone.trim()) data.patientPhone = phone.trim();
    const found: Problems = {};
    if (!date || !time) found.slotStart = ['Choose a date and a time.'];
    else data.slotStart = toRfc3339(date, time);
    if (!data.patientName) found.patientName = ['Enter the patient name.'];
    if (!data.clinicId) found.clinicId = ['Choose a clinic.'];
    const problems = { ...byField(client.validate(C, data)), ...found };
    if (Object.keys(problems).length) return setProblems(problems);
    try {
      await client.create(C, data);
    } catch (err) {
      return setProblems(problemsOf(err));
    }
    try { localStorage.setItem(LAST_CLINIC, String(data.clinicId)); } catch { /* private mode */ }
    setProblems({});
    setName('');
    setPhone('');
    setTime('');
    setSaved(`Booked ${data.patientName} at ${time}.`);
  };

  return (
    <form class="panel" onSubmit={submit} noValidate data-testid="book-form" aria-labelledby="book-h">
      <h3 id="book-h" class="mt0">Book an appointment</h3>
      {saved ? <p class="ok-msg" role="status" data-testid="book-saved">{saved}</p> : null}
      <FieldError problems={problems} name="" />
      <label for="b-name">Patient name *</label>
      <input id="b-name" data-testid="book-patient-name" autocomplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-invalid={problems.patientName ? 'true' : undefined} />
      <FieldError problems={problems} name="patientName" />
      <label for="b-phone">Patient phone</label>
      <input id="b-phone" type="tel" data-testid="book-patient-phone" autocomplete="off" value={phone} onInput={(e) => setPhone(e.currentTarget.value)} />
      <FieldError problems={problems} name="patientPhone" />
      <label for="b-clinic">Clinic *</label>
      <input id="b-clinic" list="clinic-list" data-testid="book-clinic" autocomplete="off" value={clinicId} onInput={(e) => setClinicId(e.currentTarget.value)} placeholder="Choose or type a clinic id" />
      <datalist id="clinic-list">{clinics.map((c) => <option value={c} />)}</datalist>
      <FieldError problems={problems} name="clinicId" />
      <div class="row">
        <div>
          <label for="b-date">Date *</label>
          <input id="b-date" type="date" data-testid="book-date" value={date} onInput={(e) => setDate(e.currentTarget.value)} />
        </div>
        <div>
          <label for="b-time">Time *</label>
          <input id="b-time" type="time" step={300} data-testid="book-time" value={time} onInput={(e) => setTime(e.currentTarget.value)} />
        </div>
      </div>
      <FieldError problems={problems} name="slotStart" />
      <FieldError problems={problems} name="status" />
      <div class="actions"><button type="submit" data-testid="book-submit">Book</button></div>
    </form>
  );
}

type Panel = '' | 'reschedule' | 'note' | 'edit';

/** The status moves the collection's monotonic rule allows: [to, label, test id, button class]. */
const NEXT: Record<string, [string, string, string, string][]> = {
  booked: [['checked_in', 'Check in', 'action-check-in', 'small'], ['cancelled', 'Cancel', 'action-cancel', 'small alt'], ['no_show', 'No show', 'action-no-show', 'small alt']],
  checked_in: [['completed', 'Complete', 'action-complete', 'small']],
};

function Appointment({ r }: { r: LocalRecord }) {
  const { client } = useApp();
  const [panel, setPanel] = useState<Panel>('');
  const [problems, setProblems] = useState<Problems>({});
  const d = r.data;
  const state = shownState(r, client);
  const parts = localParts(d.slotStart);
  const status = String(d.status ?? 'booked');
  const notes = Array.isArray(d.notes) ? (d.notes as unknown[]).map(String) : [];

  const change = async (changes: Record<string, unknown>) => {
    const merged: Record<string, unknown> = { ...d, ...changes };
    for (const k of Object.keys(changes)) if (changes[k] === null) delete merged[k];
    const found = byField(client.validate(C, merged));
    if (Object.keys(found).length) { setProblems(found); return false; }
    try {
      await client.update(C, r.recordId, changes);
    } catch (e) {
      setProblems(problemsOf(e));
      return false;
    }
    setProblems({});
    setPanel('');
    return true;
  };

  return (
    <li class={`card${r.deleted ? ' gone' : ''}`} data-testid="appointment" data-record-id={r.recordId} data-state={state} data-library-state={r.state} data-deleted={String(r.deleted)} data-status={status}>
      <div class="rec-head">
        <strong class="gone-text" data-testid="appointment-time">{parts.time || '??:??'}</strong>
        <strong class="gone-text" data-testid="appointment-name">{String(d.patientName ?? '')}</strong>
        <Badge state={state} />
      </div>
      <div class="gone-text muted">
        <span data-testid="appointment-clinic">{String(d.clinicId ?? '')}</span>
        {' · '}
        <span data-testid="appointment-status">{status.replace('_', ' ')}</span>
        {d.patientPhone ? <> · <span data-testid="appointment-phone">{String(d.patientPhone)}</span></> : null}
      </div>
      {notes.length ? <ul class="notes" data-testid="appointment-notes">{notes.map((n) => <li>{n}</li>)}</ul> : null}
      <RecordNotice record={r} />
      <FieldError problems={problems} name="" />
      <FieldError problems={problems} name="status" />
      {!r.deleted ? (
        <div class="actions">
          {(NEXT[status] ?? []).map(([to, label, id, cls]) => (
            <button class={cls} data-testid={id} onClick={() => change({ status: to })}>{label}</button>
          ))}
          {status === 'booked' ? <button class="small alt" data-testid="action-reschedule" aria-expanded={panel === 'reschedule'} onClick={() => setPanel(panel === 'reschedule' ? '' : 'reschedule')}>Reschedule</button> : null}
          <button class="small alt" data-testid="action-note" aria-expanded={panel === 'note'} onClick={() => setPanel(panel === 'note' ? '' : 'note')}>Add note</button>
          <button class="small alt" data-testid="action-edit" aria-expanded={panel === 'edit'} onClick={() => setPanel(panel === 'edit' ? '' : 'edit')}>Edit details</button>
        </div>
      ) : null}
      {panel === 'reschedule' ? <Reschedule initial={parts} problems={problems} onSave={(slotStart) => change({ slotStart })} /> : null}
      {panel === 'note' ? <NoteForm problems={problems} onSave={(text) => change({ notes: [...notes, text] })} /> : null}
      {panel === 'edit' ? <EditDetails r={r} problems={problems} onSave={change} /> : null}
    </li>
  );
}

function Reschedule({ initial, problems, onSave }: { initial: { date: string; time: string }; problems: Problems; onSave: (slot: string) => Promise<boolean> }) {
  const [date, setDate] = useState(initial.date);
  const [time, setTime] = useState(initial.time);
  return (
    <form class="panel" data-testid="reschedule-form" onSubmit={(e) => { e.preventDefault(); if (date && time) void onSave(toRfc3339(date, time)); }}>
      <div class="row">
        <div><label for="r-date">New date</label><input id="r-date" type="date" data-testid="reschedule-date" value={date} onInput={(e) => setDate(e.currentTarget.value)} /></div>
        <div><label for="r-time">New time</label><input id="r-time" type="time" step={300} data-testid="reschedule-time" value={time} onInput={(e) => setTime(e.currentTarget.value)} /></div>
      </div>
      <FieldError problems={problems} name="slotStart" />
      <div class="actions"><button type="submit" class="small" data-testid="reschedule-save">Save new time</button></div>
    </form>
  );
}

function NoteForm({ problems, onSave }: { problems: Problems; onSave: (text: string) => Promise<boolean> }) {
  const [text, setText] = useState('');
  return (
    <form class="panel" data-testid="note-form" onSubmit={(e) => { e.preventDefault(); if (text.trim()) void onSave(text.trim()); }}>
      <label for="n-text">Note</label>
      <textarea id="n-text" rows={2} data-testid="note-text" value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <FieldError problems={problems} name="notes" />
      <div class="actions"><button type="submit" class="small" data-testid="note-save">Add note</button></div>
    </form>
  );
}

function EditDetails({ r, problems, onSave }: { r: LocalRecord; problems: Problems; onSave: (c: Record<string, unknown>) => Promise<boolean> }) {
  const [name, setName] = useState(String(r.data.patientName ?? ''));
  const [phone, setPhone] = useState(String(r.data.patientPhone ?? ''));
  const submit = (e: Event) => {
    e.preventDefault();
    const changes: Record<string, unknown> = {};
    if (name.trim() !== r.data.patientName) changes.patientName = name.trim();
    const p = phone.trim();
    if (p !== String(r.data.patientPhone ?? '')) changes.patientPhone = p || null;
    if (Object.keys(changes).length) void onSave(changes);
  };
  return (
    <form class="panel" data-testid="edit-form" onSubmit={submit}>
      <label for="e-name">Patient name</label>
      <input id="e-name" data-testid="edit-patient-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <FieldError problems={problems} name="patientName" />
      <label for="e-phone">Patient phone</label>
      <input id="e-phone" type="tel" data-testid="edit-patient-phone" value={phone} onInput={(e) => setPhone(e.currentTarget.value)} />
      <FieldError problems={problems} name="patientPhone" />
      <div class="actions"><button type="submit" class="small" data-testid="edit-save">Save</button></div>
    </form>
  );
}
