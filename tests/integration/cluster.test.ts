/**
 * `npm start` with WORKERS=2: the real server/main.ts as a node:cluster primary with two worker
 * processes on one port and one database. Workers share the load, a killed worker comes back, and
 * SIGTERM drains both, so every answered call is logged and charged exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, gatewaySetup, logsOf, newOwner, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { eventually } from '../helpers/live.js';
import { scrape, total } from '../helpers/metrics.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function workerPids(primary: number): number[] {
  try {
    // Only the workers (node running main.ts): tsx's esbuild service is a child of the primary too.
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(primary)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('server/main.ts'))
      .map((l) => Number(l.trim().split(/\s+/)[0]))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there is no such process
  }
}

/**
 * Time limits, for a loaded 2-core CI machine (every wait polls a condition; none is a sleep). Each
 * inner wait fails with its own message well before the test's limit, and all of them together fit
 * inside it: starting two workers (tsx compiles the server in each), bringing a killed one back,
 * then 60 calls and the drain.
 */
// A worker takes ~5 s to start on an idle machine; at a load average of 20 on 2 cores, over 75 s.
const WORKERS_START_MS = 150_000;
const WORKER_RESTART_MS = 120_000;
const OLD_CONNECTION_GONE_MS = 15_000;
const CALLS_MS = 60_000;
const DRAIN_MS = 60_000;
const TEST_TIMEOUT_MS = WORKERS_START_MS + WORKER_RESTART_MS + OLD_CONNECTION_GONE_MS + CALLS_MS + DRAIN_MS + 30_000;

/** Resolves with `promise`, or fails saying what did not happen within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const listeners = async () => (await sql<{ n: string }>(app, "select count(*) as n from pg_stat_activity where application_name = 'gateway-event-bus' and datname = current_database()"))[0]!.n;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

describe('cluster mode (WORKERS=2)', () => {
  it('serves from two workers, restarts a killed one, and drains both on SIGTERM with exact accounting', async () => {
    const port = await freePort();
    // Counted before the workers exist: the in-process app's own listener is the baseline.
    const before = Number(await listeners());
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        ...process.env,
        // The fake upstream runs in this (busy) test process: 1.5 s is too short a wait on a loaded machine.
        ...fakeUpstreamEnv(upstream.url, { GATEWAY_UPSTREAM_TIMEOUT_MS: '30000' }),
        NODE_ENV: 'development',
        WORKERS: '2',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: app.databaseUrl,
        DATA_DIR: mkdtempSync(join(tmpdir(), 'cluster-test-')),
        LOG_LEVEL: 'warn',
        APP_SECRET: 'cluster-test-secret-cluster-test-secret-0123',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await eventually(
        async () => workerPids(child.pid!).length === 2 && Number(await listeners()) >= before + 2 && (await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false)),
        WORKERS_START_MS,
        'both workers to start',
      ).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${output}`)));
      const pids = workerPids(child.pid!);
      expect(pids).toHaveLength(2);

      // A worker killed outright is started again.
      process.kill(pids[0]!, 'SIGKILL');
      // Back means: a new process, and its event bus listening (the killed one's session may take a moment to leave pg_stat_activity).
      await eventually(async () => {
        const now = workerPids(child.pid!);
        return now.length === 2 && !now.includes(pids[0]!) && Number(await listeners()) >= before + 2;
      }, WORKER_RESTART_MS, 'the killed worker to come back').catch((err: Error) => Promise.reject(new Error(`${err.message}\n${output}`)));
      await eventually(async () => Number(await listeners()) === before + 2, OLD_CONNECTION_GONE_MS, 'the killed worker\'s connections to close');

      const { orgId, key } = await gatewaySetup(app, owner, { credits: '10' });
      const startBalance = await balanceOf(app, orgId);
      const target = { url };
      const results = await within(
        Promise.all(Array.from({ length: 60 }, (_, i) => rawChat(target, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `call ${i}` }] }))),
        CALLS_MS,
        '60 calls to be answered',
      );
      expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.slice(0, 200)}`)).toEqual([]);
      // Whichever worker answers a scrape, /metrics counts both workers' calls (summed by the primary).
      const served = async () => total(await scrape(url), 'gateway_requests_total', { status: '200' });
      await eventually(async () => (await served()) === 60, CALLS_MS, '/metrics to count the 60 calls');
      for (let i = 0; i < 4; i++) expect(await served()).toBe(60);

      child.kill('SIGTERM');
      expect(await within(exited, DRAIN_MS, `the cluster to drain and exit on SIGTERM\n${output}`)).toBe(0);
      expect(workerPids(child.pid!)).toHaveLength(0);
      // Both workers' pending usage was committed before they exited.
      const logs = await logsOf(app, orgId);
      expect(logs).toHaveLength(60);
      const costs = logs.reduce((n, l) => n + BigInt(l.cost_nanos), 0n);
      const ledger = await usageLedgerOf(app, orgId);
      expect(ledger.total).toBe(costs);
      expect(ledger.requests).toBe(60);
      expect(startBalance - (await balanceOf(app, orgId))).toBe(costs);
    } finally {
      if (child.exitCode === null) {
        for (const pid of workerPids(child.pid!)) process.kill(pid, 'SIGKILL');
        child.kill('SIGKILL');
      }
    }
  }, TEST_TIMEOUT_MS);

  it('refuses a WORKERS value that is not a count', async () => {
    const { loadConfig } = await import('../../server/config.js');
    expect(() => loadConfig({ WORKERS: 'lots' })).toThrow(/WORKERS is a number of processes from 1 to 99, or auto/);
    expect(loadConfig({ WORKERS: '3' }).workers).toBe(3);
    const auto = loadConfig({ WORKERS: 'auto' }).workers;
    expect(auto).toBeGreaterThanOrEqual(1);
    expect(auto).toBeLessThanOrEqual(8);
    expect(loadConfig({}).workers).toBe(1);
  });
});
