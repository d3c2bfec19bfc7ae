/**
 * The sync dashboard for supervisors, from GET /v1/admin/stats (stats.schema.json). Tolerant: any
 * field may be missing, and a device's counts may come as `counts: {...}` or at its top level.
 */
import { useState } from 'preact/hooks';
import { useApp, useAsync } from './util';

type Obj = Record<string, unknown>;
const num = (v: unknown) => (typeof v === 'number' ? v.toLocaleString() : '—');
const text = (v: unknown) => (v === undefined || v === null || v === '' ? '—' : String(v));
const when = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v).toLocaleString() : '—');
const KNOWN = ['mutations', 'applied', 'merged', 'rejected', 'conflict', 'resolutions', 'held'];
const COUNTS = ['mutations', 'applied', 'merged', 'rejected', 'conflict'];

export function DashboardScreen() {
  const { client } = useApp();
  const [reload, setReload] = useState(0);
  const [stats, error] = useAsync(() => client.server.stats(), [client, reload]);
  const s = (stats ?? {}) as Obj;
  const totals = (s.totals && typeof s.totals === 'object' ? s.totals : {}) as Obj;
  const totalKeys = [...KNOWN.filter((k) => k in totals), ...Object.keys(totals).filter((k) => !KNOWN.includes(k))];
  const reasons = Object.entries((s.rejectionReasons ?? {}) as Obj);
  const devices = Array.isArray(s.devices) ? (s.devices as Obj[]) : [];
  const rate = typeof s.syncSuccessRate === 'number' ? `${(s.syncSuccessRate <= 1 ? s.syncSuccessRate * 100 : s.syncSuccessRate).toFixed(1)} %` : '—';
  const count = (d: Obj, k: string) => ((d.counts && typeof d.counts === 'object' ? (d.counts as Obj)[k] : undefined) ?? d[k]);

  return (
    <section data-testid="dashboard">
      <h2>Sync dashboard</h2>
      <div class="row center">
        <p class="muted">
          {s.tenantId ? `Tenant ${text(s.tenantId)}. ` : ''}
          {s.since ? `Since ${when(s.since)}. ` : ''}
          {s.serverTime ? `Server time ${when(s.serverTime)}.` : ''}
        </p>
        <button class="alt fixed" data-testid="dashboard-refresh" onClick={() => setReload(reload + 1)}>Refresh</button>
      </div>
      {error ? <p class="form-err" data-testid="dashboard-error">{error}</p> : null}
      {!stats && !error ? <p class="muted">Loading…</p> : null}
      {stats ? (
        <>
          <div class="kv" data-testid="dashboard-totals">
            <div>Sync success<b data-testid="dashboard-success-rate">{rate}</b></div>
            {totalKeys.map((k) => <div>{k}<b data-testid={`total-${k}`}>{num(totals[k])}</b></div>)}
            <div>Pending holds<b>{num(s.pendingHolds)}</b></div>
            <div>Open conflicts<b>{num(s.openConflicts)}</b></div>
            <div>Open inbox items<b data-testid="dashboard-open-inbox">{num(s.openInboxItems)}</b></div>
          </div>
          <h3>Rejection reasons</h3>
          {reasons.length ? <ul data-testid="dashboard-reasons">{reasons.map(([code, n]) => <li>{code}: {num(n)}</li>)}</ul> : <p class="muted">None.</p>}
          <h3>Devices</h3>
          <div class="scroll">
            <table class="wide" data-testid="dashboard-devices">
              <thead>
                <tr>
                  <th scope="col">Device</th><th scope="col">User</th><th scope="col">Last push</th><th scope="col">Last pull</th>
                  {COUNTS.map((k) => <th scope="col">{k}</th>)}
                  <th scope="col">Holds</th><th scope="col">Open conflicts</th><th scope="col">Open items</th>
                </tr>
              </thead>
              <tbody>
                {devices.map((d) => (
                  <tr data-testid="dashboard-device" data-device-id={text(d.deviceId)}>
                    <th scope="row">
                      {text(d.name ?? d.deviceName)}
                      {d.kind && d.kind !== 'device' ? <span class="muted"> ({text(d.kind)})</span> : null}
                      {d.revoked ? <strong> (revoked)</strong> : null}
                      <br /><span class="muted">{text(d.deviceId).slice(0, 8)}</span>
                    </th>
                    <td>{text(d.userId)}</td>
                    <td>{when(d.lastPushAt)}</td>
                    <td>{when(d.lastPullAt)}</td>
                    {COUNTS.map((k) => <td class="n">{num(count(d, k))}</td>)}
                    <td class="n">{num(d.pendingHolds)}</td><td class="n">{num(d.openConflicts)}</td><td class="n">{num(d.openInboxItems)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
