/**
 * PostgreSQL restarting mid-traffic: every call answered with 200 ends up logged and charged
 * exactly once (the meter holds and retries its batches while the database is away; a commit whose
 * reply the restart cut is not applied twice). Runs its own embedded PostgreSQL, never the shared one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../server/db/embedded.js';
import { migrate, openDatabase } from '../../server/db/orm.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/billing.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, meterOf, newOwner, rawChat, usageLedgerOf } from '../helpers/gateway.js';
import { ledgerCheck } from '../../server/modules/billing/ledger.js';

let dir: string;
let port: number;
let db: EmbeddedDatabase | null = null;
let upstream: FakeUpstream;
let app: TestApp | null = null;

const startDb = () => startEmbeddedPostgres({ dataDir: dir, port, persistent: true });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meter-restart-pg-'));
  port = 41000 + Math.floor(Math.random() * 9000);
  db = await startDb();
  const orm = await openDatabase(db.url);
  await migrate(orm);
  await orm.close();
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ databaseUrl: db.url, env: fakeUpstreamEnv(upstream.url) });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await upstream?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('PostgreSQL restarting mid-traffic', () => {
  it('loses and doubles no answered call', async () => {
    const running = app!;
    const owner = await newOwner(running);
    const { orgId, key } = await gatewaySetup(running, owner, { credits: '100' });
    const before = await balanceOf(running, orgId);

    const statuses: number[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const stream = (w + i) % 3 === 0;
        const res = await rawChat(running, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `restart ${w} ${i} [chunks:3]` }], stream }).catch(() => ({ status: 0, text: '' }));
        // A stream is answered when it completed; one refused before its headers has a JSON error status.
        statuses.push(res.status === 200 && stream && !res.text.includes('data: [DONE]') ? -1 : res.status);
        if (res.status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const answered = () => statuses.filter((s) => s === 200).length;
    try {
      await waitFor(async () => answered() >= 20, 20_000, '20 calls answered before the restart');
      // Stop PostgreSQL mid-traffic (fast shutdown: connections are cut), from inside a batch's
      // transaction so that one batch is surely in flight when it goes.
      const stopped = new Promise<void>((resolve, reject) => {
        meterOf(running).fault = async (point) => {
          if (point !== 'beforeCommit') return;
          meterOf(running).fault = null;
          db!.stop().then(resolve, reject);
          await new Promise((r) => setTimeout(r, 200));
        };
      });
      await stopped;
      db = null;
      const during = statuses.length;
      await waitFor(async () => statuses.length >= during + 8, 20_000, 'calls made while the database is down');
      db = await startDb();
      const after = answered();
      await waitFor(async () => answered() >= after + 20, 30_000, '20 calls answered after the restart');
    } finally {
      meterOf(running).fault = null;
      stop = true;
      await Promise.all(workers);
    }
    await flushUsage(running);
    const meter = meterOf(running);
    expect(meter.stats.dropped).toBe(0);
    // The batch in flight at the stop failed and was retried after the restart.
    expect(meter.stats.failures).toBeGreaterThan(0);

    const ok = answered();
    const logs = await logsOf(running, orgId);
    const logged200 = logs.filter((l) => l.status === 200);
    // Every answered call once; no call logged that was not made.
    expect(logged200).toHaveLength(ok);
    expect(logs.length).toBeLessThanOrEqual(statuses.length);
    const charged = logs.reduce((s, l) => s + (l.paid_by === 'credits' ? BigInt(l.cost_nanos) : 0n), 0n);
    const ledger = await usageLedgerOf(running, orgId);
    expect(ledger.requests).toBe(logs.filter((l) => l.paid_by === 'credits' && l.cost_nanos !== '0').length);
    expect(ledger.total).toBe(charged);
    expect(before - (await balanceOf(running, orgId))).toBe(charged);
    const { balanceNanos, ledgerSumNanos } = await ledgerCheck(running.orm.em.fork(), orgId);
    expect(balanceNanos).toBe(ledgerSumNanos);
    const [rollup] = await sql<{ requests: string }>(running, 'select sum(requests)::text as requests from usage_rollup where org_id = ?', [orgId]);
    expect(Number(rollup!.requests)).toBe(logs.length);
  }, 120_000);
});
