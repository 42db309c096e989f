/**
 * logs.list filters against real PostgreSQL: time range, API key, status, model, provider, endpoint, project,
 * and the text search in retained bodies (case-insensitive, literal %/_, bounded to 31 days, never
 * another organization's rows, never rows without bodies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { gatewaySetup, newOwner, type Owner } from '../helpers/gateway.js';

let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  app = await startTestApp();
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
});

const HOUR = 3_600_000;

interface Call {
  projectId: string;
  apiKeyId: string;
  provider?: string;
  model?: string;
  endpoint?: string;
  status?: number;
  request?: unknown;
  response?: unknown;
  at?: Date;
}

async function logCall(orgId: string, c: Call): Promise<string> {
  const [row] = await sql<{ id: string }>(
    app,
    `insert into request_log (org_id, project_id, api_key_id, endpoint, provider, model, paid_by, latency_ms, status, request_body, response_body, created_at)
     values (?, ?, ?, ?, ?, ?, 'credits', 12, ?, ?::jsonb, ?::jsonb, ?::timestamptz) returning id`,
    [
      orgId, c.projectId, c.apiKeyId, c.endpoint ?? 'chat.completions', c.provider ?? 'openai', c.model ?? 'gpt-4o-mini', c.status ?? 200,
      c.request === undefined ? null : JSON.stringify(c.request), c.response === undefined ? null : JSON.stringify(c.response), (c.at ?? new Date()).toISOString(),
    ],
  );
  return String(row!.id);
}

const chat = (text: string) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
const reply = (text: string) => ({ choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }] });

describe('logs.list filters', () => {
  it('filters by time range, key, status, model, provider and project; combined they intersect', async () => {
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const other = await owner.client.project.create.mutate({ orgId, name: 'Other project' });
    const { apiKey: otherKey } = await owner.client.apiKey.create.mutate({ projectId: other.id, name: 'other key' });
    const now = Date.now();
    const a = await logCall(orgId, { projectId, apiKeyId, at: new Date(now - 30 * 60_000) });
    const b = await logCall(orgId, { projectId, apiKeyId, status: 500, model: 'gpt-4.1-nano', at: new Date(now - 3 * HOUR) });
    const c = await logCall(orgId, { projectId: other.id, apiKeyId: otherKey.id, provider: 'anthropic', model: 'claude-haiku-4-5', endpoint: 'messages', at: new Date(now - 10 * 60_000) });
    const d = await logCall(orgId, { projectId: other.id, apiKeyId: otherKey.id, status: 429, at: new Date(now - 26 * HOUR) });
    const ids = async (input: Record<string, unknown>) => (await owner.client.logs.list.query({ orgId, ...input })).items.map((i) => i.id).sort();

    expect(await ids({})).toEqual([a, b, c, d].sort());
    expect(await ids({ from: new Date(now - HOUR) })).toEqual([a, c].sort());
    expect(await ids({ from: new Date(now - 27 * HOUR), to: new Date(now - 2 * HOUR) })).toEqual([b, d].sort());
    expect(await ids({ apiKeyId: otherKey.id })).toEqual([c, d].sort());
    expect(await ids({ projectId: other.id })).toEqual([c, d].sort());
    expect(await ids({ status: 'error' })).toEqual([b, d].sort());
    expect(await ids({ status: 'success' })).toEqual([a, c].sort());
    expect(await ids({ model: 'gpt-4.1-nano' })).toEqual([b]);
    expect(await ids({ provider: 'anthropic' })).toEqual([c]);
    expect(await ids({ endpoint: 'messages' })).toEqual([c]);
    expect(await ids({ endpoint: 'chat.completions' })).toEqual([a, b, d].sort());
    expect((await owner.client.logs.get.query({ orgId, logId: c })).endpoint).toBe('messages');
    expect(await ids({ status: 'error', apiKeyId: otherKey.id, from: new Date(now - 30 * HOUR) })).toEqual([d]);
    // Paging with filters keeps the filter on every page.
    const first = await owner.client.logs.list.query({ orgId, status: 'success', limit: 1 });
    expect(first.items.map((i) => i.id)).toEqual([c]);
    const second = await owner.client.logs.list.query({ orgId, status: 'success', limit: 1, cursor: first.nextCursor! });
    expect(second.items.map((i) => i.id)).toEqual([a]);
    expect(second.nextCursor).toBeNull();
  });

  it('searches retained request and response bodies, case-insensitively and literally, in its organization only', async () => {
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const stranger = await newOwner(app, 'Stranger');
    const theirs = await gatewaySetup(app, stranger);
    const inRequest = await logCall(orgId, { projectId, apiKeyId, request: chat('Where is the Zebra-Crossing?'), response: reply('Down the road.') });
    const inResponse = await logCall(orgId, { projectId, apiKeyId, request: chat('Tell me a joke'), response: reply('A zebra walks into a bar') });
    const percent = await logCall(orgId, { projectId, apiKeyId, request: chat('Discount of 50% off'), response: reply('ok') });
    await logCall(orgId, { projectId, apiKeyId }); // no bodies (retention level "none")
    await logCall(theirs.orgId, { projectId: theirs.projectId, apiKeyId: theirs.apiKeyId, request: chat('zebra'), response: reply('zebra') });
    const found = async (search: string, extra: Record<string, unknown> = {}) =>
      (await owner.client.logs.list.query({ orgId, search, ...extra })).items.map((i) => i.id).sort();

    expect(await found('ZEBRA')).toEqual([inRequest, inResponse].sort());
    expect(await found('zebra-crossing')).toEqual([inRequest]);
    expect(await found('walks into')).toEqual([inResponse]);
    // % and _ are literal characters, not wildcards.
    expect(await found('50%')).toEqual([percent]);
    expect(await found('%')).toEqual([percent]);
    expect(await found('walks_into')).toEqual([]); // a wildcard _ would match "walks into"
    // Combined with other filters.
    expect(await found('zebra', { status: 'error' })).toEqual([]);
    // The search covers the time range asked for (default: the last 7 days), at most 31 days.
    expect(await found('zebra', { from: new Date(Date.now() - HOUR), to: new Date(Date.now() + HOUR) })).toEqual([inRequest, inResponse].sort());
    expect(await found('zebra', { to: new Date(Date.now() - 8 * 24 * HOUR) })).toEqual([]);
    await expect(owner.client.logs.list.query({ orgId, search: 'zebra', from: new Date(Date.now() - 40 * 24 * HOUR) })).rejects.toThrow(/at most 31 days/);
  });

  it('leaves an old body out of the default search window, and finds it with a range that covers it', async () => {
    const { orgId, projectId, apiKeyId } = await gatewaySetup(app, owner);
    const old = await logCall(orgId, { projectId, apiKeyId, request: chat('antelope'), at: new Date(Date.now() - 10 * 24 * HOUR) });
    expect((await owner.client.logs.list.query({ orgId, search: 'antelope' })).items).toEqual([]);
    const ranged = await owner.client.logs.list.query({ orgId, search: 'antelope', from: new Date(Date.now() - 20 * 24 * HOUR) });
    expect(ranged.items.map((i) => i.id)).toEqual([old]);
  });
});
