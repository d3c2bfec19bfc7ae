/**
 * The offline-first web app against a real server in Debian's Chromium. See README.md for the
 * data-testid contract and what each scenario checks. Screenshots go to web/e2e-artifacts/.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bodyText, cfg, closeAll, Device, futureDay, OFFLINE_MESSAGE, RUN, serverRecords } from './helpers';

const DAY = futureDay(2);
const BADULLA = 'clinic-badulla-03';
const BANDARAWELA = 'clinic-bandarawela-01';

if (cfg.skip) console.warn(`\n!!! ${cfg.skip} !!!\n`);

describe.skipIf(Boolean(cfg.skip))('CivicSync web app in Chromium', () => {
  afterAll(closeAll);

  it('1. offline: three bookings survive a reload and a browser restart, then sync exactly once', async () => {
    const d = await new Device('offline').launch();
    await d.enroll('01-enrollment');
    await d.offline(true);
    await expect.poll(() => d.page.getByTestId('offline-banner').textContent()).toBe(OFFLINE_MESSAGE);
    expect(await d.page.getByTestId('online-indicator').getAttribute('data-online')).toBe('false');

    const names = ['A', 'B', 'C'].map((x) => `Offline ${x} ${RUN}`);
    const times = ['08:00', '08:15', '08:30'];
    for (let i = 0; i < 3; i++) await d.book({ name: names[i], phone: `07700000${i}`, clinic: BADULLA, date: DAY, time: times[i] });
    for (const n of names) await d.expectState(n, 'pending');
    await expect.poll(() => d.page.getByTestId('pending-count').textContent()).toBe('3');
    await d.shot('02-offline-pending');

    await d.page.reload();
    await d.page.getByTestId('appointment-list').waitFor();
    for (const n of names) await d.expectState(n, 'pending');

    // Close the browser and start it again on the same profile, still offline.
    await d.close();
    await d.launch();
    await d.offline(true);
    await d.goto();
    await d.page.getByTestId('offline-banner').waitFor();
    for (const n of names) await d.expectState(n, 'pending');

    await d.offline(false);
    await d.syncNow();
    for (const n of names) await d.expectState(n, 'synced');
    await expect.poll(() => d.page.getByTestId('online-indicator').getAttribute('data-online')).toBe('true');
    expect(await d.page.getByTestId('offline-banner').count()).toBe(0);
    await d.shot('03-synced');

    for (const n of names) {
      const recs = await serverRecords('appointments', { patientName: n });
      expect(recs, `${n} on the server`).toHaveLength(1);
      expect(recs[0].data.clinicId).toBe(BADULLA);
      expect(String(recs[0].data.slotStart)).toMatch(new RegExp(`^${DAY}T08:[0-9]{2}:00\\+05:30$`));
      expect(recs[0].recordId).toBe(await d.appointment(n).getAttribute('data-record-id'));
    }
    await d.close();
  });

  it('2. a push the server committed but whose response was lost is retried and applied exactly once', async () => {
    const d = await new Device('lost-response').launch();
    await d.enroll();
    const name = `Lost response ${RUN}`;
    let lost = 0;
    let pushes = 0;
    let lostStatus = 0;
    // context.route, not page.route: the push may be sent by the page or by the service worker's
    // Background Sync (whichever holds the sync lock first), and only context.route sees both.
    await d.context.route('**/v1/sync/push', async (route) => {
      pushes++;
      if (lost === 0 && bodyText(route.request()).includes(name)) {
        lost++;
        const resp = await route.fetch(); // the server commits the push ...
        lostStatus = resp.status();
        await route.abort('connectionreset'); // ... and the device never hears back
        return;
      }
      await route.continue();
    });
    await d.book({ name, clinic: BADULLA, date: DAY, time: '09:00' });
    await d.syncNow(); // (unless the library's own timer already pushed it)
    await expect.poll(async () => lost, { timeout: 20_000 }).toBe(1);
    expect(lostStatus).toBe(200);
    expect(await serverRecords('appointments', { patientName: name })).toHaveLength(1);

    await d.syncNow();
    await d.expectState(name, 'synced');
    expect(pushes).toBeGreaterThanOrEqual(2);
    const recs = await serverRecords('appointments', { patientName: name });
    expect(recs).toHaveLength(1);
    expect(recs[0].version).toBe(1);
    await d.close();
  });

  it('3. two devices book the last slot offline: the first keeps it, the second sees the rollback', async () => {
    const a = await new Device('slot-a').launch();
    const b = await new Device('slot-b').launch();
    await a.enroll();
    await b.enroll();
    await a.offline(true);
    await b.offline(true);
    const nameA = `Slot first ${RUN}`;
    const nameB = `Slot second ${RUN}`;
    await a.book({ name: nameA, clinic: BADULLA, date: DAY, time: '10:00' });
    await b.book({ name: nameB, clinic: BADULLA, date: DAY, time: '10:00' });
    await a.expectState(nameA, 'pending');
    await b.expectState(nameB, 'pending');

    await a.offline(false);
    await a.syncNow();
    await a.expectState(nameA, 'synced');

    await b.offline(false);
    await b.syncNow();
    await b.expectState(nameB, 'rejected');
    const card = b.appointment(nameB);
    const message = 'Your booking for 10:00 could not be kept: that slot is full. Please choose another time.';
    expect(await card.getAttribute('data-deleted')).toBe('true');
    expect(await card.getAttribute('class')).toContain('gone');
    expect(await card.getByTestId('appointment-name').evaluate((e) => getComputedStyle(e).textDecorationLine)).toContain('line-through');
    expect(await card.getByTestId('record-notice-message').textContent()).toBe(message);
    const notice = b.page.getByTestId('notice').filter({ hasText: message });
    await expect.poll(() => notice.count()).toBe(1);
    expect(await notice.getAttribute('data-kind')).toBe('rejected');
    // B pulled A's booking too.
    await b.expectState(nameA, 'synced');
    await b.shot('04-rejected');

    expect(await serverRecords('appointments', { patientName: nameA })).toHaveLength(1);
    expect(await serverRecords('appointments', { patientName: nameB })).toHaveLength(0);

    // Dismissing the notice removes the struck-out booking.
    await notice.getByTestId('notice-dismiss').click();
    await expect.poll(() => b.appointment(nameB).count()).toBe(0);
    await a.close();
    await b.close();
  });

  it('4. a conflict goes to the supervisor inbox, is resolved with takeClient, and reaches the device', async () => {
    const a = await new Device('conflict-a').launch();
    const b = await new Device('conflict-b').launch();
    await a.enroll();
    await b.enroll();
    const name = `Conflict ${RUN}`;
    await a.book({ name, phone: '0770000000', clinic: BANDARAWELA, date: DAY, time: '11:00' });
    await a.syncNow();
    await a.expectState(name, 'synced');
    await b.syncNow();
    await b.expectState(name, 'synced');
    const recordId = await a.appointment(name).getAttribute('data-record-id');
    expect(await b.appointment(name).getAttribute('data-record-id')).toBe(recordId);

    await a.offline(true);
    await b.offline(true);
    await a.editPhone(name, '0771111111');
    await b.editPhone(name, '0772222222');
    await a.expectState(name, 'pending');
    await b.expectState(name, 'pending');

    await a.offline(false);
    await a.syncNow();
    await a.expectState(name, 'synced');
    await b.offline(false);
    await b.syncNow();
    await b.expectState(name, 'conflict');
    const conflictNotice = b.page.getByTestId('notice').and(b.page.locator(`[data-record-id="${recordId}"]`));
    await expect.poll(() => conflictNotice.count()).toBeGreaterThanOrEqual(1);
    expect((await conflictNotice.first().getByTestId('notice-message').textContent())?.length).toBeGreaterThan(10);
    expect(await b.appointment(name).getByTestId('record-notice-message').count()).toBe(1);
    await b.shot('05-conflict');

    // The supervisor (demo-nurse on device A) opens the inbox.
    await a.page.getByTestId('nav-inbox').click();
    const item = a.page.locator(`[data-testid=inbox-item][data-record-id="${recordId}"][data-kind=conflict]`);
    await item.waitFor();
    await a.shot('06-inbox');
    await item.getByTestId('inbox-open').click();
    const view = a.page.getByTestId('inbox-item-view');
    await view.waitFor();
    const row = view.locator('[data-testid=compare-row][data-field=patientPhone]');
    expect(await row.getAttribute('data-differs')).toBe('true');
    expect(await row.getByTestId('compare-base').textContent()).toBe('0770000000');
    expect(await row.getByTestId('compare-server').textContent()).toBe('0771111111');
    expect(await row.getByTestId('compare-client').textContent()).toBe('0772222222');
    expect(await view.locator('[data-testid=compare-row][data-field=patientName]').getAttribute('data-differs')).toBe('false');
    await a.shot('07-inbox-compare');
    await view.getByTestId('resolve-takeClient').check();
    await view.getByTestId('resolve-comment').fill('Patient confirmed the new number by phone.');
    await view.getByTestId('resolve-submit').click();
    await view.getByTestId('resolve-result').waitFor();

    await b.syncNow();
    await b.expectState(name, 'synced');
    expect(await b.appointment(name).getByTestId('appointment-phone').textContent()).toBe('0772222222');
    const recs = await serverRecords('appointments', { patientName: name });
    expect(recs).toHaveLength(1);
    expect(recs[0].data.patientPhone).toBe('0772222222');
    await a.page.getByTestId('nav-appointments').click();
    await a.syncNow();
    await expect.poll(() => a.appointment(name).getByTestId('appointment-phone').textContent()).toBe('0772222222');
    await b.shot('08-resolved');

    // The sync dashboard (GET /v1/admin/stats).
    await a.page.getByTestId('nav-dashboard').click();
    await a.page.getByTestId('dashboard').waitFor();
    await expect.poll(async () => (await a.page.getByTestId('dashboard-devices').count()) + (await a.page.getByTestId('dashboard-error').count())).toBe(1);
    const statsError = await a.page.getByTestId('dashboard-error').count();
    if (statsError) console.warn(`dashboard: stats unavailable: ${await a.page.getByTestId('dashboard-error').textContent()}`);
    else expect(await a.page.getByTestId('dashboard-device').count()).toBeGreaterThanOrEqual(2);
    await a.shot('09-dashboard');
    await a.close();
    await b.close();
  });

  it('6. online, a booking made on another device appears without pressing Sync now (the live stream)', async () => {
    const watcher = await new Device('live-watcher').launch();
    await watcher.enroll();
    await expect.poll(() => watcher.page.getByTestId('online-indicator').getAttribute('data-live'), { timeout: 15_000 }).toBe('true');
    const other = await new Device('live-writer').launch();
    await other.enroll();
    const name = `Live ${RUN}`;
    await other.book({ name, clinic: BANDARAWELA, date: DAY, time: '11:45' });
    await other.syncNow();
    await other.expectState(name, 'synced');
    // No click on the watcher: its stream hears of the commit and it pulls by itself.
    await watcher.expectState(name, 'synced', 10_000);
    await watcher.shot('12-live-update');
    await other.close();
    await watcher.close();
  });

  it('5. enrollment by QR scan; the generic screen of subsidy claims: a form from the JSON Schema, validation next to fields, sync', async () => {
    const d = await new Device('generic').launch();
    await d.fakeQrCamera();
    await d.enroll(undefined, true); // this one enrolls by scanning the code's QR
    const p = d.page;
    await p.getByTestId('nav-collection-subsidy_claims').click();
    const form = p.locator('[data-testid=generic-form][data-collection=subsidy_claims]');
    await form.waitFor();
    expect(await form.getByTestId('field-status').evaluate((e) => e.tagName)).toBe('SELECT');
    expect(await form.getByTestId('field-areaHectares').getAttribute('type')).toBe('number');
    const farmer = `F-${RUN}`;
    await form.getByTestId('field-farmerId').fill(farmer);
    await form.getByTestId('field-crop').fill('paddy');
    await form.getByTestId('field-areaHectares').fill('0');
    await form.getByTestId('generic-submit').click();
    await form.getByTestId('field-error-season').waitFor();
    await form.getByTestId('field-error-areaHectares').waitFor();
    await d.shot('10-subsidy-form-errors');
    await form.getByTestId('field-season').fill('Maha 2026/27');
    await form.getByTestId('field-areaHectares').fill('1.5');
    await form.getByTestId('field-amountRequested').fill('12000');
    await form.getByTestId('generic-submit').click();
    const rec = p.getByTestId('record').filter({ has: p.getByTestId('value-farmerId').getByText(farmer, { exact: true }) });
    await rec.waitFor();
    await d.syncNow();
    await expect.poll(() => rec.getAttribute('data-state')).toBe('synced');
    await d.shot('11-subsidy-claims');
    const recs = await serverRecords('subsidy_claims', { farmerId: farmer });
    expect(recs).toHaveLength(1);
    expect(recs[0].data).toMatchObject({ crop: 'paddy', season: 'Maha 2026/27', areaHectares: 1.5, amountRequested: 12000, status: 'submitted' });
    await d.close();
  });
});
