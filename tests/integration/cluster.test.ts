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
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        ...process.env,
        ...fakeUpstreamEnv(upstream.url),
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
      const before = Number(await listeners());
      await eventually(async () => Number(await listeners()) === before + 2 && (await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false)), 60_000, `both workers to start\n${output}`);
      const pids = workerPids(child.pid!);
      expect(pids).toHaveLength(2);

      // A worker killed outright is started again.
      process.kill(pids[0]!, 'SIGKILL');
      await eventually(async () => {
        const now = workerPids(child.pid!);
        return now.length === 2 && !now.includes(pids[0]!) && Number(await listeners()) === before + 2;
      }, 60_000, `the killed worker to come back\n${output}`);

      const { orgId, key } = await gatewaySetup(app, owner, { credits: '10' });
      const startBalance = await balanceOf(app, orgId);
      const target = { url };
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => rawChat(target, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `call ${i}` }] })));
      expect(results.every((r) => r.status === 200)).toBe(true);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
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
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

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
