/** Gateway test helpers: an organization with credits and a project API key, and its usage, read back. */
import OpenAI from 'openai';
import type { TestApp } from './app.js';
import { signUp } from './client.js';
import { raiseOrganizationLimit, sql } from './db-state.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { postLedgerEntry } from '../../server/modules/billing/ledger.js';
import { decimalToNanos } from '../../shared/money.js';
import type { UsageMeter } from '../../server/modules/usage/meter.js';

export type Owner = Awaited<ReturnType<typeof signUp>>;

export async function newOwner(app: TestApp, name = 'Gateway Owner'): Promise<Owner> {
  const owner = await signUp(app.url, name);
  await raiseOrganizationLimit(app, owner.user.id);
  return owner;
}

/** An organization (with `credits` dollars, default 100), its default project, and one API key. */
export async function gatewaySetup(app: TestApp, owner: Owner, opts: { credits?: string; name?: string; mode?: 'credits' | 'provider-keys' | 'hybrid'; rpmLimit?: number } = {}) {
  const { organization, defaultProject } = await owner.client.organization.create.mutate({ name: opts.name ?? `GW ${Math.random().toString(36).slice(2, 8)}` });
  const orgId = organization.id;
  const projectId = defaultProject.id;
  if (opts.mode) await owner.client.project.update.mutate({ projectId, mode: opts.mode });
  const credits = opts.credits ?? '100';
  if (credits !== '0') await grantCredits(app, orgId, credits);
  const { apiKey, key } = await owner.client.apiKey.create.mutate({ projectId, name: 'test key', rpmLimit: opts.rpmLimit });
  return { orgId, projectId, apiKeyId: apiKey.id, key };
}

export async function grantCredits(app: TestApp, orgId: string, dollars: string): Promise<void> {
  await runCommand(app.services, null, (work) => postLedgerEntry(work, orgId, { type: 'adjustment', amountNanos: decimalToNanos(dollars), description: 'test credits' }));
}

export function openai(app: TestApp, key: string, opts: { maxRetries?: number; timeout?: number } = {}) {
  return new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, ...opts });
}

/** Commits every usage record this app instance holds now; the meter keeps batching as in production afterwards. */
export async function flushUsage(app: TestApp): Promise<void> {
  const gateway = app.services.gateway;
  if (!gateway) throw new Error('the gateway is not registered');
  await gateway.meter.flush();
}

/** The usage meter of an app instance. */
export function meterOf(app: Pick<TestApp, 'services'>): UsageMeter {
  const gateway = app.services.gateway;
  if (!gateway) throw new Error('the gateway is not registered');
  return gateway.meter;
}

export interface LogRow {
  id: string;
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_write_tokens: number;
  cost_nanos: string;
  paid_by: string;
  status: number;
  error: string | null;
  cached: boolean;
  streamed: boolean;
  canceled: boolean;
  ttft_ms: number | null;
  latency_ms: number;
  request_body: unknown;
  response_body: unknown;
}

export async function logsOf(app: TestApp, orgId: string): Promise<LogRow[]> {
  // In call order: instances commit their batches independently, so ids follow commits, not calls.
  return sql<LogRow>(app, 'select * from request_log where org_id = ? order by created_at, id', [orgId]);
}

export async function balanceOf(app: TestApp, orgId: string): Promise<bigint> {
  const [row] = await sql<{ credits_nanos: string }>(app, 'select credits_nanos from organization where id = ?', [orgId]);
  return BigInt(row!.credits_nanos);
}

export async function usageLedgerOf(app: TestApp, orgId: string): Promise<{ total: bigint; requests: number; entries: number }> {
  const [row] = await sql<{ total: string | null; requests: string | null; entries: string }>(
    app,
    `select sum(amount_nanos) as total, sum(request_count) as requests, count(*) as entries from credit_ledger where org_id = ? and type = 'usage'`,
    [orgId],
  );
  return { total: -BigInt(row!.total ?? 0), requests: Number(row!.requests ?? 0), entries: Number(row!.entries) };
}

export async function rawChat(app: Pick<TestApp, 'url'>, key: string | null, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, text, headers: res.headers };
}
