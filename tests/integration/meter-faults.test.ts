/**
 * The meter under faults: every answered call is logged and charged exactly once.
 * - a commit that succeeds but whose reply is lost is retried as a no-op (one log, one charge);
 * - a batch split after such a commit does not apply its halves again; a refused batch is split and
 *   every record still commits (one the database cannot take is written without its bodies);
 * - lone UTF-16 surrogates and NUL (bodies, model names, error text) are repaired, not dropped, and
 *   never hold back another organization's records;
 * - deleting a project right after traffic does not deadlock against the meter;
 * - flushing (what tests do) leaves the meter batching as in production.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, meterOf, newOwner, rawChat, usageLedgerOf, type Owner } from '../helpers/gateway.js';
import { ledgerCheck } from '../../server/modules/billing/ledger.js';
import pg from 'pg';
import { claimBatch, type UsageRecord } from '../../server/modules/usage/meter.js';
import type { Sql } from '../../server/events/unit-of-work.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  if (app) meterOf(app).fault = null;
  await app?.close();
  await upstream?.close();
});

const lostReply = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
const refused = () => Object.assign(new Error('invalid input syntax for type json'), { code: '22P02' });

function record(orgId: string, projectId: string, apiKeyId: string, extra: Partial<UsageRecord> = {}): UsageRecord {
  return {
    orgId, projectId, apiKeyId, endpoint: 'chat.completions', provider: 'openai', model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 20, cachedTokens: 0, cacheWriteTokens: 0,
    costNanos: 1000n, paidBy: 'credits', latencyMs: 3, ttftMs: null, status: 200, error: null,
    cached: false, streamed: false, canceled: false, requestBody: null, responseBody: null, createdAt: new Date(), ...extra,
  };
}

async function expectExact(orgId: string, calls: number, before: bigint) {
  const logs = await logsOf(app, orgId);
  expect(logs).toHaveLength(calls);
  const cost = logs.reduce((s, l) => s + (l.paid_by === 'credits' ? BigInt(l.cost_nanos) : 0n), 0n);
  const ledger = await usageLedgerOf(app, orgId);
  expect(ledger.requests).toBe(logs.filter((l) => l.paid_by === 'credits' && l.cost_nanos !== '0').length);
  expect(ledger.total).toBe(cost);
  expect(before - (await balanceOf(app, orgId))).toBe(cost);
  const { balanceNanos, ledgerSumNanos } = await ledgerCheck(app.orm.em.fork(), orgId);
  expect(balanceNanos).toBe(ledgerSumNanos);
  const [rollup] = await sql<{ requests: string | null; charged: string | null }>(app, 'select sum(requests)::text as requests, sum(charged_nanos)::text as charged from usage_rollup where org_id = ?', [orgId]);
  expect(Number(rollup!.requests ?? 0)).toBe(calls);
  expect(BigInt(rollup!.charged ?? 0)).toBe(cost);
  return logs;
}

describe('exactly once', () => {
  it('a commit that succeeded but whose reply was lost is retried as a no-op: one call, one log, one charge', async () => {
    const meter = meterOf(app);
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const duplicates = meter.stats.duplicates;
    let lost = 0;
    meter.fault = (point) => {
      if (point === 'afterCommit' && lost++ < 2) throw lostReply();
    };
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `lost reply ${i}` }] })));
      expect(answers.map((r) => r.status)).toEqual(Array(6).fill(200));
      await flushUsage(app);
    } finally {
      meter.fault = null;
    }
    expect(lost).toBeGreaterThanOrEqual(2);
    expect(meter.stats.duplicates - duplicates).toBeGreaterThanOrEqual(1);
    await expectExact(orgId, 6, before);
  });

  it("records of an organization deleted since its calls are skipped; the batch's other organization commits", async () => {
    const meter = meterOf(app);
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const gone = randomUUID();
    const records = meter.stats.records;
    meter.record(record(gone, projectId, apiKeyId));
    for (let i = 0; i < 3; i++) meter.record(record(orgId, projectId, apiKeyId));
    await flushUsage(app);
    expect(meter.stats.dropped).toBe(0);
    expect(meter.stats.records - records).toBe(4);
    expect(await logsOf(app, gone)).toHaveLength(0);
    await expectExact(orgId, 3, before);
  });

  it('a batch split after its commit was applied does not apply its halves again', async () => {
    const meter = meterOf(app);
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const duplicates = meter.stats.duplicates;
    const points: string[] = [];
    meter.fault = (point, batchId) => {
      points.push(`${point} ${batchId.split('.').length - 1}`);
      // The whole batch commits but its reply is lost; its retry is refused (so it is split).
      if (!batchId.includes('.') && point === 'afterCommit' && !points.includes('afterCommit lost')) {
        points.push('afterCommit lost');
        throw lostReply();
      }
      if (!batchId.includes('.') && point === 'begin' && points.includes('afterCommit lost')) throw refused();
    };
    try {
      for (let i = 0; i < 6; i++) meter.record(record(orgId, projectId, apiKeyId));
      await flushUsage(app);
    } finally {
      meter.fault = null;
    }
    expect(points).toContain('afterCommit lost');
    // Both halves found their whole's claim.
    expect(meter.stats.duplicates - duplicates).toBe(2);
    expect(meter.stats.dropped).toBe(0);
    await expectExact(orgId, 6, before);
  });

  it('a refused batch is split and every record commits; one the database cannot take is kept without its bodies', async () => {
    const meter = meterOf(app);
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const stripped = meter.stats.stripped;
    // A body nested too deep for JSON (and PostgreSQL's jsonb): the whole batch fails to write.
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    let failedOnce = false;
    meter.fault = (point, batchId) => {
      // And the first attempt of the whole batch is refused too, for good measure.
      if (point === 'begin' && !batchId.includes('.') && !failedOnce) {
        failedOnce = true;
        throw refused();
      }
    };
    try {
      for (let i = 0; i < 9; i++) meter.record(record(orgId, projectId, apiKeyId, { requestBody: { messages: [{ role: 'user', content: `kept ${i}` }] }, responseBody: { ok: i } }));
      meter.record(record(orgId, projectId, apiKeyId, { requestBody: { messages: deep } }));
      await flushUsage(app);
    } finally {
      meter.fault = null;
    }
    expect(meter.stats.stripped - stripped).toBe(1);
    expect(meter.stats.dropped).toBe(0);
    const logs = await expectExact(orgId, 10, before);
    expect(logs.filter((l) => l.request_body === null)).toHaveLength(1);
    expect(logs.filter((l) => l.request_body !== null)).toHaveLength(9);
  });
});

describe('records the database cannot take as they are', () => {
  it('lone surrogates and NUL in prompts, model names and errors: N answered -> N logged and charged; another organization commits meanwhile', async () => {
    const poisoned = await gatewaySetup(app, owner, { name: 'Poisoned' });
    const other = await gatewaySetup(app, owner, { name: 'Bystander' });
    const org = await owner.client.organization.get.query({ orgId: poisoned.orgId });
    await owner.client.organization.update.mutate({ orgId: poisoned.orgId, version: org.version, retentionLevel: 'retain' });
    // The gateway learns the new retention level through its cache invalidation.
    await waitFor(async () => {
      await rawChat(app, poisoned.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'probe' }] });
      await flushUsage(app);
      return (await logsOf(app, poisoned.orgId)).at(-1)?.request_body != null;
    }, 5_000, 'bodies to be retained');
    const before = await balanceOf(app, poisoned.orgId);
    const probes = (await logsOf(app, poisoned.orgId)).length;
    const otherBefore = await balanceOf(app, other.orgId);

    const N = 12;
    const poison = Array.from({ length: N }, (_, i) =>
      rawChat(app, poisoned.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `lone \ud800 high ${i} \udc00 low and NUL \u0000 [chunks:2]` }], stream: i % 2 === 0 }),
    );
    // A model name (and so the error text and rollup key) with a lone surrogate: refused with 404 model_not_found, still logged.
    const badModel = rawChat(app, poisoned.key, { model: 'openai/gpt-4o-mini\ud83d', messages: [{ role: 'user', content: 'x' }] });
    const bystander = Array.from({ length: 5 }, (_, i) => rawChat(app, other.key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `bystander ${i}` }] }));
    const answered = await Promise.all(poison);
    expect(answered.map((r) => r.status)).toEqual(Array(N).fill(200));
    expect((await badModel).status).toBe(404);
    expect((await Promise.all(bystander)).map((r) => r.status)).toEqual(Array(5).fill(200));

    // Without flushing: the bystander's calls commit within the batching window, not after retries.
    await waitFor(async () => (await logsOf(app, other.orgId)).length === 5, 1_500, "the other organization's calls to commit");
    await flushUsage(app);
    expect(meterOf(app).stats.dropped).toBe(0);
    await expectExact(other.orgId, 5, otherBefore);

    const logs = (await logsOf(app, poisoned.orgId)).slice(probes);
    expect(logs).toHaveLength(N + 1);
    const ok = logs.filter((l) => l.status === 200);
    expect(ok).toHaveLength(N);
    expect(ok.every((l) => l.paid_by === 'credits' && BigInt(l.cost_nanos) > 0n)).toBe(true);
    const bodies = ok.map((l) => JSON.stringify(l.request_body));
    expect(bodies.every((b) => b.includes('lone \ufffd high') && b.includes('\ufffd low and NUL \ufffd'))).toBe(true);
    const refusedCall = logs.find((l) => l.status === 404)!;
    expect(refusedCall.model).toMatch(/gpt-4o-mini\ufffd$/);
    expect(refusedCall.error).toContain('\ufffd');
    const charged = ok.reduce((s, l) => s + BigInt(l.cost_nanos), 0n);
    expect(before - (await balanceOf(app, poisoned.orgId))).toBe(charged);
    const { balanceNanos, ledgerSumNanos } = await ledgerCheck(app.orm.em.fork(), poisoned.orgId);
    expect(balanceNanos).toBe(ledgerSumNanos);
    // The rollups hold the repaired model name too.
    const models = await sql<{ model: string }>(app, 'select distinct model from usage_rollup where org_id = ? order by model', [poisoned.orgId]);
    expect(models.map((m) => m.model)).toContain(refusedCall.model);
  });
});

describe('project deletion right after traffic', () => {
  it('does not deadlock against a batch holding its keys (the batch paused between its writes and its deduction)', async () => {
    const meter = meterOf(app);
    const { orgId } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    for (let round = 0; round < 3; round++) {
      const project = await owner.client.project.create.mutate({ orgId, name: `doomed ${round}` });
      const { key } = await owner.client.apiKey.create.mutate({ projectId: project.id, name: 'k' });
      let paused: () => void = () => {};
      const inBatch = new Promise<void>((resolve) => (paused = resolve));
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      meter.fault = async (point, _id, records) => {
        if (point === 'written' && records.some((r) => r.projectId === project.id)) {
          paused();
          await released;
        }
      };
      try {
        const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `doomed ${round} ${i}` }] })));
        expect(answers.map((r) => r.status)).toEqual(Array(4).fill(200));
        await inBatch;
        const deleted = owner.client.project.delete.mutate({ projectId: project.id });
        // The delete is under way (its transaction waits on a lock, or has finished) before the batch goes on.
        await new Promise((r) => setTimeout(r, 100));
        release();
        await expect(deleted).resolves.toEqual({ ok: true });
        await flushUsage(app);
      } finally {
        meter.fault = null;
        release();
      }
      const logs = await sql(app, 'select id from request_log where project_id = ?', [project.id]);
      expect(logs).toHaveLength(4);
    }
    await expectExact(orgId, 12, before);
  });

  it('deleting a project right after its calls, many times: every delete succeeds, every call is charged once', async () => {
    const meter = meterOf(app);
    const { orgId } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const failures = meter.stats.failures;
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const project = await owner.client.project.create.mutate({ orgId, name: `short-lived ${round}` });
      const { key } = await owner.client.apiKey.create.mutate({ projectId: project.id, name: 'k' });
      const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => rawChat(app, key, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `short ${round} ${i}` }] })));
      expect(answers.map((r) => r.status)).toEqual(Array(3).fill(200));
      await expect(owner.client.project.delete.mutate({ projectId: project.id })).resolves.toEqual({ ok: true });
    }
    await flushUsage(app);
    // No batch failed on a deadlock and had to be retried.
    expect(meter.stats.failures).toBe(failures);
    await expectExact(orgId, rounds * 3, before);
  });
});

describe('the metering test helper', () => {
  it('flushing commits what is pending and leaves the meter batching with its window', async () => {
    const meter = meterOf(app);
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    meter.record(record(orgId, projectId, apiKeyId));
    await flushUsage(app);
    expect(meter.pendingCount).toBe(0);
    // A meter left closing (what drain() does) would commit this record at once; an open one waits out its window.
    meter.record(record(orgId, projectId, apiKeyId));
    expect(meter.pendingCount).toBe(1);
    await waitFor(async () => meter.pendingCount === 0 && (await logsOf(app, orgId)).length === 2, 2_000, 'the windowed batch to commit');
  });
});

/** `?` placeholders on one plain connection, as the meter's unit of work runs them. */
function sqlOn(client: pg.Client): Sql {
  return {
    execute: (async (text: string, params: unknown[] = []) => {
      let n = 0;
      return (await client.query(text.replace(/\?/g, () => `$${++n}`), params)).rows;
    }) as Sql['execute'],
  };
}

describe('a split half and a whole batch still committing', () => {
  it('the half waits for the whole batch in flight, then sees its claim and applies nothing', async () => {
    const whole = new pg.Client({ connectionString: app.databaseUrl });
    const half = new pg.Client({ connectionString: app.databaseUrl });
    await whole.connect();
    await half.connect();
    const onWhole = sqlOn(whole);
    const onHalf = sqlOn(half);
    try {
      const id = `test-${Date.now()}`;
      // The whole batch has claimed its id and is about to commit (its client may already have lost the reply).
      await whole.query('begin');
      expect(await claimBatch(onWhole, id, [])).toEqual(new Set());
      // Its first half starts meanwhile: without the family lock it would not see the uncommitted claim.
      await half.query('begin');
      let settled = false;
      const halfClaim = claimBatch(onHalf, `${id}.0`, []).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false);
      await whole.query('commit');
      expect(await halfClaim).toBeNull();
      await half.query('rollback');
      // A half of a batch that never committed claims normally.
      await half.query('begin');
      expect(await claimBatch(onHalf, `other-${id}.1`, [])).toEqual(new Set());
      await half.query('rollback');
    } finally {
      await whole.end();
      await half.end();
    }
  });
});

describe('usage summaries committed with their batch', () => {
  /** The org's `usage` live events from now on, and a batch of 5 records (when a summary is due). */
  async function scenario(fault: (point: string, batchId: string, state: { lost: number }) => void) {
    const meter = meterOf(app);
    const events = app.services.gateway!.events;
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const usage: number[] = [];
    const stop = app.services.bus.subscribeOrg(orgId, { deliver: (e) => e.type === 'usage' && usage.push(e.requests), resync: () => {} });
    const took: boolean[] = [];
    const inBatch = events.inBatch.bind(events);
    events.inBatch = (work, records, batch) => {
      inBatch(work, records, batch);
      if (records.some((r) => r.orgId === orgId)) took.push(batch.taken !== null);
    };
    const state = { lost: 0 };
    try {
      // The last summary was published long enough ago: the next batch carries one.
      await new Promise((r) => setTimeout(r, 450));
      meter.fault = (point, batchId) => fault(point, batchId, state);
      for (let i = 0; i < 5; i++) meter.record(record(orgId, projectId, apiKeyId));
      await flushUsage(app);
      meter.fault = null;
      await waitFor(async () => usage.reduce((a, b) => a + b, 0) >= 5, 5_000, "the usage summaries");
      // Nothing more arrives (a doubled summary would, within the next interval).
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      meter.fault = null;
      events.inBatch = inBatch;
      stop();
    }
    return { usage, took, orgId };
  }

  it('a summary falling due while a batch is coming is left to that batch (no transaction of its own)', async () => {
    const meter = meterOf(app);
    const events = app.services.gateway!.events;
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const usage: number[] = [];
    const stop = app.services.bus.subscribeOrg(orgId, { deliver: (e) => e.type === 'usage' && usage.push(e.requests), resync: () => {} });
    const flush = events.flush.bind(events);
    let flushed = 0;
    events.flush = () => {
      flushed++;
      return flush();
    };
    let release = () => {};
    try {
      await new Promise((r) => setTimeout(r, 450));
      // Batch 1 publishes a summary (5); batch 2 comes too soon after (its 3 wait for the next one).
      for (let i = 0; i < 5; i++) meter.record(record(orgId, projectId, apiKeyId));
      await flushUsage(app);
      for (let i = 0; i < 3; i++) meter.record(record(orgId, projectId, apiKeyId));
      await flushUsage(app);
      // Batch 3 is held at its start past the moment the summary falls due.
      const held = new Promise<void>((r) => (release = r));
      meter.fault = async (point, batchId, records) => {
        if (point === 'begin' && records.some((r) => r.orgId === orgId)) await held;
      };
      for (let i = 0; i < 2; i++) meter.record(record(orgId, projectId, apiKeyId));
      const third = flushUsage(app);
      await new Promise((r) => setTimeout(r, 600));
      release();
      await third;
      await waitFor(async () => usage.reduce((a, b) => a + b, 0) >= 10, 5_000, 'the usage summaries');
      await new Promise((r) => setTimeout(r, 500));
      expect(usage).toEqual([5, 5]);
      expect(flushed).toBe(0);
    } finally {
      release();
      meter.fault = null;
      events.flush = flush;
      stop();
    }
  });

  it('a due summary rides in the batch; its commit reply lost, the retry finds the claim and the summary counts once', async () => {
    const { usage, took } = await scenario((point, batchId, state) => {
      if (point === 'afterCommit' && !batchId.includes('.') && state.lost++ === 0) throw lostReply();
    });
    expect(took[0]).toBe(true);
    expect(usage.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('a summary emitted by an attempt that rolled back goes back to the totals: the halves that commit are counted once', async () => {
    const { usage, took, orgId } = await scenario((point, batchId) => {
      if (point === 'beforeCommit' && !batchId.includes('.')) throw refused();
    });
    expect(took.every(Boolean)).toBe(true);
    expect(usage.reduce((a, b) => a + b, 0)).toBe(5);
    expect(await logsOf(app, orgId)).toHaveLength(5);
  });

  it('a whole batch committed with its summary, its retry refused and split: the halves find the claim and nothing is counted twice', async () => {
    const { usage, orgId } = await scenario((point, batchId, state) => {
      if (!batchId.includes('.') && point === 'afterCommit' && state.lost++ === 0) throw lostReply();
      if (!batchId.includes('.') && point === 'begin' && state.lost > 0) throw refused();
    });
    expect(usage.reduce((a, b) => a + b, 0)).toBe(5);
    expect(await logsOf(app, orgId)).toHaveLength(5);
  });
});
