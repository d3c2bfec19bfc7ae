/** Helpers for the browser tests: devices (persistent Chromium profiles), the server's admin and records APIs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type BrowserContext, chromium, type Locator, type Page, type Request } from 'playwright-core';
import { expect, inject } from 'vitest';

export const cfg = inject('e2e');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export const OFFLINE_MESSAGE = 'You are offline. Your changes are saved and will sync when you are back online.';
export const TIMEZONE = 'Asia/Colombo';
const WAIT = 30_000;

/** A day in the future (local date in TIMEZONE), so bookings are plausible. */
export function futureDay(daysAhead: number): string {
  const t = new Date(Date.now() + daysAhead * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: TIMEZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(t);
}

export const RUN = Math.random().toString(36).slice(2, 7);

const profiles: string[] = [];
const open: Device[] = [];

/** One field device: a persistent Chromium profile (IndexedDB, service worker, keys survive a restart). */
export class Device {
  context!: BrowserContext;
  page!: Page;
  readonly dir: string;

  constructor(readonly name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `civicsync-e2e-${name}-`));
    profiles.push(this.dir);
  }

  async launch(): Promise<this> {
    this.context = await chromium.launchPersistentContext(this.dir, {
      executablePath: cfg.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 1,
      isMobile: false,
      timezoneId: TIMEZONE,
      locale: 'en-GB',
      serviceWorkers: 'allow',
    });
    this.context.setDefaultTimeout(WAIT);
    this.page = this.context.pages()[0] ?? (await this.context.newPage());
    this.page.on('pageerror', (e) => console.warn(`[${this.name}] page error: ${e.message}`));
    open.push(this);
    return this;
  }

  async close(): Promise<void> {
    const i = open.indexOf(this);
    if (i >= 0) open.splice(i, 1);
    await this.context.close();
  }

  async goto(hash = ''): Promise<void> {
    await this.page.goto(`${cfg.baseUrl}/${hash}`);
    await this.page.locator('[data-testid=app-header]').waitFor();
  }

  /**
   * Makes the camera and BarcodeDetector available with fakes (headless Chromium on Linux has no
   * BarcodeDetector): the "camera" is a canvas stream, and the detector "sees" window.__qrCode.
   */
  async fakeQrCamera(): Promise<void> {
    await this.context.addInitScript(() => {
      const w = window as unknown as { __qrCode?: string; BarcodeDetector?: unknown };
      w.BarcodeDetector = class {
        async detect() {
          return w.__qrCode ? [{ rawValue: w.__qrCode, format: 'qr_code' }] : [];
        }
      };
      navigator.mediaDevices.getUserMedia = async () => {
        const c = document.createElement('canvas');
        c.width = 64;
        c.height = 64;
        c.getContext('2d')!.fillRect(0, 0, 64, 64);
        return c.captureStream(5);
      };
    });
  }

  /** Opens the app, enrolls with a fresh code (typed, or scanned with fakeQrCamera), and waits until the service worker controls the page. */
  async enroll(screenshot?: string, viaQr = false): Promise<void> {
    await this.goto();
    const code = await issueCode();
    if (viaQr) {
      await this.page.getByTestId('enroll-scan').click();
      await this.page.getByTestId('scan-video').waitFor();
      await this.page.evaluate((c) => { (window as unknown as { __qrCode: string }).__qrCode = c; }, code);
      await expect.poll(() => this.page.getByTestId('enroll-code').inputValue()).toBe(code);
      expect(await this.page.getByTestId('scan-panel').count()).toBe(0);
    } else {
      expect(await this.page.getByTestId('enroll-scan').count(), 'no scan button without BarcodeDetector').toBe(0);
      await this.page.getByTestId('enroll-code').fill(code);
    }
    await this.page.getByTestId('enroll-device-name').fill(`e2e ${this.name}`);
    if (screenshot) await this.shot(screenshot);
    await this.page.getByTestId('enroll-submit').click();
    await this.page.getByTestId('book-form').waitFor();
    await this.waitForServiceWorker();
  }

  async waitForServiceWorker(): Promise<void> {
    await this.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise<void>((r) => navigator.serviceWorker.addEventListener('controllerchange', () => r(), { once: true }));
      }
    });
  }

  offline(on: boolean): Promise<void> {
    return this.context.setOffline(on);
  }

  async book(a: { name: string; phone?: string; clinic: string; date: string; time: string }): Promise<void> {
    const p = this.page;
    await p.getByTestId('nav-appointments').click();
    await p.getByTestId('book-patient-name').fill(a.name);
    await p.getByTestId('book-patient-phone').fill(a.phone ?? '');
    await p.getByTestId('book-clinic').fill(a.clinic);
    await p.getByTestId('book-date').fill(a.date);
    await p.getByTestId('book-time').fill(a.time);
    await p.getByTestId('book-submit').click();
    await this.appointment(a.name).waitFor();
  }

  /** The appointment card of a patient (names are unique per test). */
  appointment(name: string): Locator {
    return this.page.getByTestId('appointment').filter({ has: this.page.getByTestId('appointment-name').getByText(name, { exact: true }) });
  }

  async state(name: string): Promise<string | null> {
    const card = this.appointment(name);
    return (await card.count()) === 1 ? card.getAttribute('data-state') : `count=${await card.count()}`;
  }

  async expectState(name: string, state: string, timeout = WAIT): Promise<void> {
    await expect.poll(() => this.state(name), { timeout, message: `${this.name}: ${name} should be ${state}` }).toBe(state);
  }

  /** Clicks "Sync now" and waits for that sync to finish. */
  async syncNow(): Promise<void> {
    const button = this.page.getByTestId('sync-now');
    await button.click();
    await expect.poll(() => button.textContent(), { timeout: WAIT }).toBe('Sync now');
  }

  async editPhone(name: string, phone: string): Promise<void> {
    const card = this.appointment(name);
    await card.getByTestId('action-edit').click();
    await card.getByTestId('edit-patient-phone').fill(phone);
    await card.getByTestId('edit-save').click();
    await expect.poll(() => card.getByTestId('appointment-phone').textContent()).toBe(phone);
  }

  async shot(file: string): Promise<void> {
    await this.page.screenshot({ path: join(cfg.artifacts, `${file}.png`), fullPage: true });
  }
}

export async function closeAll(): Promise<void> {
  for (const d of [...open]) await d.close().catch(() => undefined);
  for (const dir of profiles.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function issueCode(): Promise<string> {
  const r = await fetch(`${cfg.baseUrl}/v1/admin/tenants/demo/enrollment-codes`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${cfg.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId: 'demo-nurse', maxUses: 1, label: 'e2e' }),
  });
  if (r.status !== 201) throw new Error(`enrollment code: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { code: string }).code;
}

export interface ServerRecord {
  recordId: string;
  version: number;
  data: Record<string, unknown>;
}

/** Live records on the server (records API, API-client token), filtered by top-level field values. */
export async function serverRecords(collection: string, filter: Record<string, string>): Promise<ServerRecord[]> {
  const q = new URLSearchParams({ ...filter, limit: '1000' });
  const r = await fetch(`${cfg.baseUrl}/v1/records/${collection}?${q}`, { headers: { Authorization: `Bearer ${cfg.apiToken}` } });
  if (!r.ok) throw new Error(`records API: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { records: ServerRecord[] }).records;
}

/** The text of a push request's body (gunzipped when the library compressed it). */
export function bodyText(req: Request): string {
  const buf = req.postDataBuffer();
  if (!buf) return '';
  return buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf).toString('utf8') : buf.toString('utf8');
}
