/**
 * Starts a real CivicSync server for the browser tests and stops it afterwards.
 *
 * Environment:
 * - CHROMIUM_PATH: the browser (default /usr/bin/chromium). Never downloaded. Without it the tests
 *   are skipped with a loud banner, unless CIVICSYNC_REQUIRE_BROWSER=1 (then they fail).
 * - JAVA_HOME: the JDK (default /usr/lib/jvm/temurin-25-jdk-amd64).
 * - CIVICSYNC_SERVER_JAR: the server jar (default ../server-app/target/civicsync-server-app-0.1.0-SNAPSHOT.jar).
 * - CIVICSYNC_WEB_DIR: when set, passed as `serve --web-dir`; otherwise the jar serves its own copy of the app.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

export interface E2eConfig {
  /** Set when the browser tests cannot run: why. */
  readonly skip?: string;
  readonly baseUrl: string;
  readonly adminToken: string;
  readonly apiToken: string;
  readonly chromium: string;
  readonly artifacts: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: E2eConfig;
  }
}

const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function banner(text: string): void {
  const line = '#'.repeat(Math.max(60, text.length + 8));
  console.warn(`\n${line}\n#   ${text}\n${line}\n`);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });
}

async function freePort(): Promise<number> {
  const start = 18200 + Math.floor(Math.random() * 100);
  for (let i = 0; i < 100; i++) {
    const port = 18200 + ((start - 18200 + i) % 100);
    if (port === 18181) continue;
    if (await portFree(port)) return port;
  }
  throw new Error('no free port in 18200-18299');
}

async function waitReady(url: string, proc: ChildProcess, log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode}:\n${tail(log)}`);
    try {
      const r = await fetch(`${url}/health/ready`);
      if (r.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the server was not ready within ${timeoutMs} ms:\n${tail(log)}`);
}

function tail(file: string): string {
  try { return readFileSync(file, 'utf8').split('\n').slice(-40).join('\n'); } catch { return ''; }
}

export default async function setup(project: TestProject) {
  const artifacts = join(web, 'e2e-artifacts');
  mkdirSync(artifacts, { recursive: true });
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const empty: E2eConfig = { baseUrl: '', adminToken: '', apiToken: '', chromium, artifacts };
  if (!existsSync(chromium)) {
    const why = `BROWSER TESTS SKIPPED: no Chromium at ${chromium} (set CHROMIUM_PATH)`;
    if (process.env.CIVICSYNC_REQUIRE_BROWSER === '1') {
      banner(`BROWSER TESTS FAILED: no Chromium at ${chromium} and CIVICSYNC_REQUIRE_BROWSER=1`);
      throw new Error(`no Chromium at ${chromium}`);
    }
    banner(why);
    project.provide('e2e', { ...empty, skip: why });
    return;
  }

  const javaHome = process.env.JAVA_HOME ?? '/usr/lib/jvm/temurin-25-jdk-amd64';
  const java = join(javaHome, 'bin', 'java');
  const jar = resolve(web, process.env.CIVICSYNC_SERVER_JAR ?? '../server-app/target/civicsync-server-app-0.1.0-SNAPSHOT.jar');
  if (!existsSync(jar)) throw new Error(`no server jar at ${jar}: build it (mvn -pl server-app -am package) or set CIVICSYNC_SERVER_JAR`);
  if (!existsSync(java)) throw new Error(`no java at ${java}: set JAVA_HOME to a JDK 25`);

  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'civicsync-e2e-'));
  const adminToken = `csa_${randomBytes(32).toString('base64url')}`;
  const args = ['--enable-native-access=ALL-UNNAMED', '-jar', jar, 'serve', '--demo', '--host', '127.0.0.1', '--port', String(port), '--data', data];
  const webDir = process.env.CIVICSYNC_WEB_DIR;
  if (webDir) args.push('--web-dir', resolve(webDir));
  const logFile = join(artifacts, 'server.log');
  const log = createWriteStream(logFile);
  const proc = spawn(java, args, { env: { ...process.env, CIVICSYNC_ADMIN_TOKEN: adminToken }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  const baseUrl = `http://127.0.0.1:${port}`;

  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await Promise.race([new Promise((r) => proc.once('exit', r)), new Promise((r) => setTimeout(r, 8000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    log.end();
    rmSync(data, { recursive: true, force: true });
  };

  try {
    await waitReady(baseUrl, proc, logFile, 60_000);
    const home = await fetch(`${baseUrl}/`);
    const body = await home.text();
    if (!home.ok || !body.includes('id="app"')) {
      throw new Error(`the server does not serve the web app at / (HTTP ${home.status})${webDir ? '' : '; build web/ into the jar or set CIVICSYNC_WEB_DIR=web/dist'}`);
    }
    const sw = await fetch(`${baseUrl}/sw.js`);
    if (!sw.ok) throw new Error(`the server does not serve /sw.js (HTTP ${sw.status})`);
    const r = await fetch(`${baseUrl}/v1/admin/tenants/demo/api-clients`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'e2e records check' }),
    });
    if (r.status !== 201) throw new Error(`could not make an API client: ${r.status} ${await r.text()}`);
    const apiToken = ((await r.json()) as { token: string }).token;
    console.log(`e2e: server ${baseUrl} (${webDir ? `--web-dir ${webDir}` : 'app from the jar'}), data ${data}, log ${logFile}`);
    project.provide('e2e', { baseUrl, adminToken, apiToken, chromium, artifacts });
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}
