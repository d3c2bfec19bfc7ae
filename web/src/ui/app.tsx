/** The app shell: enrollment gate, the global sync indicator, notices, navigation and the screens. */
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { CivicSyncWeb, SyncStatus } from '../sync/api';
import { AppointmentsScreen } from './appointments';
import { CollectionScreen } from './collection';
import { EnrollScreen } from './enroll';
import { AppCtx, messageOf, useApp, useAsync } from './util';

export const OFFLINE_MESSAGE = 'You are offline. Your changes are saved and will sync when you are back online.';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#\/?/, '');
}

/** Loads a screen's module on first use, so the supervisor pages stay out of the first load. */
function useLazy<P>(load: () => Promise<ComponentType<P>>, want: boolean): ComponentType<P> | undefined {
  const [comp, setComp] = useState<ComponentType<P> | undefined>(undefined);
  useEffect(() => {
    if (want && !comp) load().then((c) => setComp(() => c), () => setComp(() => LoadFailed as unknown as ComponentType<P>));
  }, [want]);
  return comp;
}

function LoadFailed() {
  return <p class="form-err" role="alert">This page could not be loaded. Connect once to get it, then it works offline too.</p>;
}

export function App({ client }: { client: CivicSyncWeb }) {
  const [rev, setRev] = useState(0);
  const [enrolled, setEnrolled] = useState(() => client.enrollment() !== undefined);
  useEffect(() => {
    const bump = () => setRev((r) => r + 1);
    const off = client.subscribe(bump);
    addEventListener('online', bump);
    addEventListener('offline', bump);
    return () => { off(); removeEventListener('online', bump); removeEventListener('offline', bump); };
  }, [client]);
  useEffect(() => {
    if (!enrolled) return;
    client.startAutoSync();
    return () => client.stopAutoSync();
  }, [client, enrolled]);

  return (
    <AppCtx.Provider value={{ client, rev }}>
      {enrolled ? <Shell /> : <><Header /><EnrollScreen onEnrolled={() => setEnrolled(true)} /></>}
    </AppCtx.Provider>
  );
}

function isOnline(status: SyncStatus): boolean {
  return status.online && navigator.onLine !== false;
}

function Header() {
  const { client } = useApp();
  const status = client.status();
  const online = isOnline(status);
  const enrollment = client.enrollment();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const syncing = busy || status.phase === 'syncing';

  const syncNow = async () => {
    setBusy(true);
    setMessage('');
    try {
      const r = await client.syncNow();
      setMessage(r.complete ? (r.pushed || r.pulled ? `Synced: ${r.pushed} sent, ${r.pulled} received.` : 'Up to date.') : `Sync stopped early: ${client.status().lastError ?? 'it will be retried'}.`);
    } catch (e) {
      setMessage(`Sync failed: ${messageOf(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <header class="top" data-testid="app-header">
        <h1>CivicSync</h1>
        <span class="net" role="status" data-testid="online-indicator" data-online={String(online)} data-live={String(Boolean(status.live))}
          title={status.live ? 'Connected: changes from other devices arrive as they happen' : undefined}>
          {online ? (status.live ? 'Online · live' : 'Online') : 'Offline'}
        </span>
        {enrollment ? (
          <button class="small" data-testid="sync-now" disabled={syncing} onClick={syncNow} data-phase={status.phase}>
            {syncing ? 'Syncing…' : 'Sync now'}
          </button>
        ) : null}
      </header>
      {enrollment ? (
        <div class="sub" data-testid="sync-status" data-pending={status.pending} data-phase={status.phase}>
          <span data-testid="pending-count">{status.pending}</span> waiting to sync
          {status.conflicts ? ` · ${status.conflicts} conflict${status.conflicts > 1 ? 's' : ''}` : ''}
          {status.rejected ? ` · ${status.rejected} rejected` : ''}
          {' · '}
          {status.lastSyncAt ? `last synced ${new Date(status.lastSyncAt).toLocaleTimeString()}` : 'not synced yet'}
          {status.lastError && online ? <> · <span data-testid="sync-error">{status.lastError}</span></> : null}
          {message ? <> · <span data-testid="sync-message">{message}</span></> : null}
          <span class="muted"> · {enrollment.deviceName} ({enrollment.userId})</span>
        </div>
      ) : null}
      {!online ? <div class="offline" role="status" data-testid="offline-banner">{OFFLINE_MESSAGE}</div> : null}
    </>
  );
}

function Notices() {
  const { client, rev } = useApp();
  const [notices] = useAsync(() => client.notices(), [client, rev]);
  if (!notices || notices.length === 0) return null;
  return (
    <section class="notices" aria-label="Notices" data-testid="notices">
      {notices.map((n) => (
        <div key={n.id} class={`notice ${n.kind}`} role="alert" data-testid="notice" data-notice-id={n.id} data-kind={n.kind} data-record-id={n.recordId} data-code={n.code}>
          <p data-testid="notice-message">{n.message}</p>
          <button class="small alt" data-testid="notice-dismiss" onClick={() => client.dismissNotice(n.id)}>Dismiss</button>
        </div>
      ))}
    </section>
  );
}

function Shell() {
  const { client } = useApp();
  const route = useHash();
  const [supervisor, setSupervisor] = useState(false);
  const online = isOnline(client.status());
  useEffect(() => {
    if (supervisor || !online) return;
    let live = true;
    client.server.canSupervise().then((yes) => { if (live) setSupervisor(yes); }, () => undefined);
    return () => { live = false; };
  }, [client, online, supervisor]);

  const [top, arg] = route.split('/');
  const Inbox = useLazy(() => import('./inbox').then((m) => m.InboxScreen), supervisor && top === 'inbox');
  const Dashboard = useLazy(() => import('./dashboard').then((m) => m.DashboardScreen), supervisor && top === 'dashboard');
  const others = client.collections().filter((c) => c.name !== 'appointments');
  const def = top === 'c' ? others.find((c) => c.name === decodeURIComponent(arg ?? '')) : undefined;

  let screen;
  if (def) screen = <CollectionScreen key={def.name} def={def} />;
  else if (top === 'inbox' && supervisor) screen = Inbox ? <Inbox itemId={arg} /> : <p class="muted">Loading…</p>;
  else if (top === 'dashboard' && supervisor) screen = Dashboard ? <Dashboard /> : <p class="muted">Loading…</p>;
  else screen = <AppointmentsScreen />;
  const current = def ? `c/${def.name}` : screen.type === AppointmentsScreen ? 'appointments' : top;
  const link = (to: string, label: string, testid: string) => (
    <a href={`#/${to}`} data-testid={testid} aria-current={current === to ? 'page' : undefined}>{label}</a>
  );

  return (
    <>
      <Header />
      <nav aria-label="Screens" data-testid="nav">
        {link('appointments', 'Appointments', 'nav-appointments')}
        {others.map((c) => link(`c/${c.name}`, c.title ?? c.name, `nav-collection-${c.name}`))}
        {supervisor ? link('inbox', 'Inbox', 'nav-inbox') : null}
        {supervisor ? link('dashboard', 'Dashboard', 'nav-dashboard') : null}
      </nav>
      <main>
        <Notices />
        {screen}
      </main>
    </>
  );
}
