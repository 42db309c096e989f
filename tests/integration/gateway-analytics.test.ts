/**
 * analytics.summary / timeseries / breakdown (read from rollups) agree with the raw logs; logs.list
 * pages and filters; the retention purge follows the plan and level windows and leaves rollups.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { purgeExpiredLogs } from '../../server/modules/usage/retention.js';
import { nanosToDecimal } from '../../shared/money.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const HOUR = 3_600_000;

describe('analytics', () => {
  it('summary, timeseries and breakdowns agree with the raw logs', async () => {
    const { orgId, projectId, key } = await gatewaySetup(app, owner);
    const other = await owner.client.project.create.mutate({ orgId, name: 'Second project' });
    const { key: otherKey } = await owner.client.apiKey.create.mutate({ projectId: other.id, name: 'second key' });
    await owner.client.project.update.mutate({ projectId, cachingEnabled: true });
    const calls: [string, string, string][] = [
      [key, 'gpt-4o-mini', 'a [chunks:3]'],
      [key, 'gpt-4o-mini', 'a [chunks:3]'], // cache hit
      [key, 'anthropic/claude-haiku-4-5', 'b [chunks:8]'],
      [key, 'gpt-4o-mini', 'c [status:500]'],
      [otherKey, 'gpt-4.1-nano', 'd [chunks:2]'],
      [otherKey, 'gpt-4.1-nano', 'e [chunks:4]'],
    ];
    for (const [k, model, content] of calls) await rawChat(app, k, { model, messages: [{ role: 'user', content }] });
    await flushUsage(app);

    const [raw] = await sql<{ requests: string; errors: string; hits: string; input: string; output: string; cost: string }>(
      app,
      `select count(*) as requests, count(*) filter (where status >= 400) as errors, count(*) filter (where cached) as hits,
              sum(input_tokens) as input, sum(output_tokens) as output, sum(cost_nanos) as cost from request_log where org_id = ?`,
      [orgId],
    );
    const from = new Date(Date.now() - 2 * HOUR);
    const to = new Date(Date.now() + HOUR);
    const summary = await owner.client.analytics.summary.query({ orgId, from, to });
    expect(summary).toMatchObject({
      requests: 6,
      errors: 1,
      errorRate: 1 / 6,
      cacheHits: 1,
      cacheHitRate: 1 / 6,
      inputTokens: Number(raw!.input),
      outputTokens: Number(raw!.output),
      cost: nanosToDecimal(BigInt(raw!.cost)),
    });
    expect(summary.latencyP50Ms).not.toBeNull();
    expect(summary.latencyP95Ms!).toBeGreaterThanOrEqual(summary.latencyP50Ms!);

    const projectOnly = await owner.client.analytics.summary.query({ orgId, projectId: other.id, from, to });
    expect(projectOnly.requests).toBe(2);

    const hourly = await owner.client.analytics.timeseries.query({ orgId, from, to, bucket: 'hour' });
    expect(hourly.length).toBeGreaterThanOrEqual(3);
    expect(hourly.reduce((n, p) => n + p.requests, 0)).toBe(6);
    expect(hourly.every((p, i) => i === 0 || p.t.getTime() - hourly[i - 1]!.t.getTime() === HOUR)).toBe(true);
    const daily = await owner.client.analytics.timeseries.query({ orgId, from: new Date(Date.now() - 3 * 24 * HOUR), to, bucket: 'day' });
    expect(daily.reduce((n, p) => n + p.requests, 0)).toBe(6);

    for (const by of ['model', 'provider', 'project', 'apiKey'] as const) {
      const rows = await owner.client.analytics.breakdown.query({ orgId, from, to, by });
      expect(rows.reduce((n, r) => n + r.requests, 0), by).toBe(6);
      expect(rows.reduce((n, r) => n + r.outputTokens, 0), by).toBe(Number(raw!.output));
    }
    const byModel = await owner.client.analytics.breakdown.query({ orgId, from, to, by: 'model' });
    expect(byModel.map((r) => r.key).sort()).toEqual(['anthropic/claude-haiku-4-5-20251001', 'openai/gpt-4.1-nano', 'openai/gpt-4o-mini']);
    const byProject = await owner.client.analytics.breakdown.query({ orgId, from, to, by: 'project' });
    expect(byProject.map((r) => r.label).sort()).toEqual(['Default Project', 'Second project']);
    const byKey = await owner.client.analytics.breakdown.query({ orgId, from, to, by: 'apiKey' });
    expect(byKey.map((r) => r.label).sort()[0]).toMatch(/^second key \(sk-gw-/);

    // An empty range answers zeros, not errors.
    const empty = await owner.client.analytics.summary.query({ orgId, from: new Date(Date.now() - 48 * HOUR), to: new Date(Date.now() - 47 * HOUR) });
    expect(empty).toMatchObject({ requests: 0, errorRate: 0, cost: '0.00', latencyP50Ms: null });
    const bad = await owner.client.analytics.summary.query({ orgId, from: to, to: from }).catch((e: unknown) => e);
    expect((bad as { data?: { code?: string } }).data?.code).toBe('BAD_REQUEST');

    // logs.list: newest first, paged by cursor, filtered.
    const page1 = await owner.client.logs.list.query({ orgId, limit: 4 });
    expect(page1.items).toHaveLength(4);
    const page2 = await owner.client.logs.list.query({ orgId, limit: 4, cursor: page1.nextCursor! });
    expect(page2.items).toHaveLength(2);
    expect(page2.nextCursor).toBeNull();
    expect(Number(page1.items[0]!.id)).toBeGreaterThan(Number(page2.items[0]!.id));
    const errors = await owner.client.logs.list.query({ orgId, status: 'error' });
    expect(errors.items.map((l) => [l.status, l.cost])).toEqual([[502, '0.00']]);
    expect((await owner.client.logs.list.query({ orgId, projectId: other.id })).items).toHaveLength(2);
    expect((await owner.client.logs.list.query({ orgId, cached: true })).items).toHaveLength(1);
    const detail = await owner.client.logs.get.query({ orgId, logId: page1.items[0]!.id });
    expect(detail).toMatchObject({ id: page1.items[0]!.id, requestBody: null, responseBody: null });
  });
});

describe('retention purge', () => {
  it('deletes logs past the plan/level window, clears bodies at level none, keeps rollups', async () => {
    const combos = [
      ['free', 'none'],
      ['free', 'retain'],
      ['pro', 'none'],
      ['pro', 'retain'],
      ['enterprise', 'none'],
      ['enterprise', 'retain'],
    ] as const;
    const ages = [1, 5, 50, 100];
    const orgs: Record<string, string> = {};
    for (const [plan, level] of combos) {
      const { orgId } = await gatewaySetup(app, owner, { credits: '0' });
      await sql(app, 'update organization set plan = ?, retention_level = ? where id = ?', [plan, level, orgId]);
      orgs[`${plan}/${level}`] = orgId;
      for (const days of ages) {
        await sql(
          app,
          `insert into request_log (org_id, project_id, api_key_id, provider, model, cost_nanos, paid_by, latency_ms, status, request_body, response_body, created_at)
           values (?, ?, ?, 'openai', 'gpt-4o-mini', 0, 'credits', 5, 200, '{"messages":[]}', '{"choices":[]}', now() - make_interval(days => ?))`,
          [orgId, randomUUID(), randomUUID(), days],
        );
      }
      await sql(app, `insert into usage_rollup (org_id, hour, project_id, api_key_id, provider, model, requests) values (?, date_trunc('hour', now() - interval '100 days'), ?, ?, 'openai', 'gpt-4o-mini', 4)`, [orgId, randomUUID(), randomUUID()]);
    }
    const result = await purgeExpiredLogs(app.orm.em.fork());
    expect(result.deleted).toBe(3 + 3 + 3 + 1 + 1 + 0);
    const kept = async (combo: string) =>
      (await sql<{ days: number; body: boolean }>(app, `select round(extract(epoch from now() - created_at) / 86400)::int as days, request_body is not null as body from request_log where org_id = ? order by created_at desc`, [orgs[combo]])).map((r) => `${r.days}${r.body ? '+body' : ''}`);
    expect(await kept('free/none')).toEqual(['1']);
    expect(await kept('free/retain')).toEqual(['1+body']);
    expect(await kept('pro/none')).toEqual(['1']);
    expect(await kept('pro/retain')).toEqual(['1+body', '5+body', '50+body']);
    expect(await kept('enterprise/none')).toEqual(['1', '5', '50']);
    expect(await kept('enterprise/retain')).toEqual(['1+body', '5+body', '50+body', '100+body']);
    const [rollups] = await sql<{ n: string }>(app, `select count(*) as n from usage_rollup where org_id in (${combos.map(() => '?').join(', ')})`, Object.values(orgs));
    expect(Number(rollups!.n)).toBe(6);
    // Idempotent.
    expect(await purgeExpiredLogs(app.orm.em.fork())).toEqual({ deleted: 0, partitionsDropped: 0, bodiesCleared: 0, cacheEntries: 0, storedResponses: 0 });
  });
});
