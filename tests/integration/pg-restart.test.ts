/**
 * PostgreSQL restarting under gateway traffic. This file runs its OWN embedded PostgreSQL (never
 * the shared test database) and stops and starts it while a real server process (and an in-process
 * instance) keep serving: no process dies of an unhandled 'error' event, calls meanwhile are
 * answered or refused with a clear 503, /healthz recovers without restarting anything, and every
 * call that was answered is logged and charged exactly once. The waits are generous caps for a
 * loaded CI machine (each polls a condition); together they stay inside the test's own limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../server/db/embedded.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, gatewaySetup, logsOf, newOwner, rawChat, usageLedgerOf } from '../helpers/gateway.js';
import { startChildInstance, type ChildInstance } from '../helpers/instance.js';
import { eventually } from '../helpers/live.js';

const dataDir = mkdtempSync(join(tmpdir(), 'gateway-pg-restart-'));
const port = 20000 + Math.floor(Math.random() * 20000);
let db: EmbeddedDatabase | null = null;
let upstream: FakeUpstream;
let app: TestApp | null = null;
let child: ChildInstance | null = null;

const startDb = () => startEmbeddedPostgres({ dataDir, port, persistent: true });
// The fake upstream runs in this test process: on a loaded machine 1.5 s (the helpers' default) is too short.
const upstreamEnv = () => fakeUpstreamEnv(upstream.url, { GATEWAY_UPSTREAM_TIMEOUT_MS: '30000' });

beforeAll(async () => {
  db = await startDb();
  upstream = await startFakeUpstream({ record: false });
}, 120_000);

afterAll(async () => {
  await child?.stop();
  await app?.close().catch(() => {});
  await upstream?.close();
  await db?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

const healthy = async (url: string) => (await fetch(`${url}/healthz`).then((r) => r.status).catch(() => 0)) === 200;

describe('PostgreSQL restarting under traffic', () => {
  it('keeps the server up, refuses or queues calls meanwhile, and records every answered call once', async () => {
    app = await startTestApp({ databaseUrl: db!.url, env: upstreamEnv() });
    const owner = await newOwner(app);
    const { orgId, key } = await gatewaySetup(app, owner, { credits: '100' });
    const startBalance = await balanceOf(app, orgId);
    // A second, real process (with the job workers, as `npm start` runs): a crash there is an exit.
    child = await startChildInstance(db!.url, 120_000, upstreamEnv(), { jobs: true });
    let crashed: string | null = null;
    void child.exited.then((code) => (crashed = `the server process exited (${code}) during the test\n${child!.stderr()}`));

    const statuses = new Map<number | string, number>();
    let answered = 0;
    let stopTraffic = false;
    const unexpected: string[] = [];
    const targets = [{ url: child.url }, { url: app.url }];
    const loop = async (n: number) => {
      for (let i = 0; !stopTraffic; i++) {
        const target = targets[(n + i) % targets.length]!;
        let status: number | string;
        try {
          const res = await rawChat(target, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `loop ${n} call ${i}` }] });
          status = res.status;
          if (res.status === 200) answered++;
          else if (res.status !== 503 || (res.json?.error as { code?: string } | undefined)?.code !== 'database_unavailable') unexpected.push(`${res.status} ${res.text.slice(0, 200)}`);
        } catch (err) {
          status = `network: ${(err as Error).message}`;
          unexpected.push(String(status));
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        // Refusals come back at once; do not spin on them while PostgreSQL is down.
        if (status !== 200) await new Promise((r) => setTimeout(r, 25));
      }
    };
    const traffic = Promise.all([0, 1, 2, 3].map(loop));
    try {
      await eventually(() => answered >= 20, 60_000, '20 calls answered before the restart');

      await db!.stop();
      db = null;
      await eventually(async () => !(await healthy(child!.url)), 20_000, '/healthz to report the database gone');
      // Traffic goes on against a server without its database for a moment.
      const duringOutage = [...statuses.values()].reduce((a, b) => a + b, 0);
      await eventually(() => [...statuses.values()].reduce((a, b) => a + b, 0) >= duringOutage + 8, 20_000, 'calls while PostgreSQL is down');
      db = await startDb();

      await eventually(async () => (await healthy(child!.url)) && (await healthy(app!.url)), 60_000, '/healthz to recover on both instances');
      const afterRestart = answered;
      await eventually(() => answered >= afterRestart + 20, 60_000, '20 calls answered after the restart');
    } finally {
      stopTraffic = true;
      await traffic;
    }
    expect(crashed).toBeNull();
    expect(unexpected.slice(0, 5)).toEqual([]);

    // SIGTERM drains the child's pending usage; the in-process instance drains its own.
    await child.stop();
    expect(await child.exited).toBe(0);
    child = null;
    await app.close();
    app = await startTestApp({ databaseUrl: db!.url });

    const logs = await logsOf(app, orgId);
    const served = logs.filter((l) => l.status === 200);
    expect(served).toHaveLength(answered);
    const costs = served.reduce((n, l) => n + BigInt(l.cost_nanos), 0n);
    const ledger = await usageLedgerOf(app, orgId);
    expect(ledger.requests).toBe(answered);
    expect(ledger.total).toBe(costs);
    expect(startBalance - (await balanceOf(app, orgId))).toBe(costs);
  }, 400_000);
});
