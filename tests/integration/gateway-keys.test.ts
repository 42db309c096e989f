/**
 * Project API keys (hash at rest, shown once, who may revoke, revocation effective at once on
 * another instance) and provider keys (sealed at rest, last 4 only, rotate, disable, validation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { createHash } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { eventually, liveConnection } from '../helpers/live.js';
import { startChildInstance } from '../helpers/instance.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;
let admin: Owner;
let developer: Owner;

async function join(orgId: string, who: Owner, role: 'admin' | 'developer') {
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role });
  await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return 'ok';
  expect(err).toBeInstanceOf(TRPCClientError);
  return (err as { data?: { code?: string } }).data?.code;
}

const chat = (app: Pick<TestApp, 'url'>, key: string) => rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

beforeAll(async () => {
  upstream = await startFakeUpstream();
  a = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(a);
  [admin, developer] = await Promise.all([signUp(a.url, 'Key Admin'), signUp(a.url, 'Key Developer')]);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await upstream?.close();
});

describe('API keys', () => {
  it('are shown once, stored as a SHA-256 hash with a visible prefix, listed with creator and last use', async () => {
    const { projectId, apiKeyId, key } = await gatewaySetup(a, owner);
    expect(key).toMatch(/^sk-gw-[A-Za-z0-9]{40}$/);
    const [row] = await sql<{ key_hash: Buffer; prefix: string }>(a, 'select key_hash, prefix from api_key where id = ?', [apiKeyId]);
    expect(row!.key_hash.equals(createHash('sha256').update(key).digest())).toBe(true);
    expect(key.startsWith(row!.prefix)).toBe(true);
    const dump = JSON.stringify(await sql(a, 'select * from api_key'));
    expect(dump).not.toContain(key);
    let [listed] = await owner.client.apiKey.list.query({ projectId });
    expect(listed).toMatchObject({ id: apiKeyId, name: 'test key', prefix: row!.prefix, status: 'active', lastUsedAt: null, createdBy: { id: owner.user.id } });
    expect(JSON.stringify(listed)).not.toContain(key.slice(12));
    expect((await chat(a, key)).status).toBe(200);
    await flushUsage(a);
    [listed] = await owner.client.apiKey.list.query({ projectId });
    expect(listed!.lastUsedAt).toBeInstanceOf(Date);
  });

  it('developers revoke their own keys only; admins revoke anyone', async () => {
    const { orgId, projectId, apiKeyId: ownersKey } = await gatewaySetup(a, owner);
    await join(orgId, admin, 'admin');
    await join(orgId, developer, 'developer');
    const mine = await developer.client.apiKey.create.mutate({ projectId, name: 'dev key' });
    expect(await codeOf(developer.client.apiKey.revoke.mutate({ apiKeyId: ownersKey }))).toBe('FORBIDDEN');
    expect((await sql<{ revoked_at: Date | null }>(a, 'select revoked_at from api_key where id = ?', [ownersKey]))[0]!.revoked_at).toBeNull();
    expect((await developer.client.apiKey.revoke.mutate({ apiKeyId: mine.apiKey.id })).status).toBe('revoked');
    expect((await admin.client.apiKey.revoke.mutate({ apiKeyId: ownersKey })).status).toBe('revoked');
    const outsider = await signUp(a.url, 'Key Outsider');
    expect(await codeOf(outsider.client.apiKey.list.query({ projectId }))).toBe('NOT_FOUND');
    expect(await codeOf(owner.client.apiKey.create.mutate({ projectId, name: '' }))).toBe('BAD_REQUEST');
    const actions = await sql<{ action: string }>(a, `select action from audit_log where org_id = ? and action like 'apiKey.%' order by id`, [orgId]);
    expect(actions.map((x) => x.action)).toEqual(['apiKey.created', 'apiKey.created', 'apiKey.revoked', 'apiKey.revoked']);
  });

  it('revocation takes effect at once on another instance that had the key cached', async () => {
    const { orgId, apiKeyId, key } = await gatewaySetup(a, owner);
    expect((await chat(b, key)).status).toBe(200);
    expect((await chat(b, key)).status).toBe(200); // now served from b's cache
    await owner.client.apiKey.revoke.mutate({ apiKeyId });
    const after = await chat(b, key);
    expect(after.status).toBe(401);
    expect(after.json).toMatchObject({ error: { code: 'invalid_api_key' } });
    expect((await chat(a, key)).status).toBe(401);
    await Promise.all([flushUsage(a), flushUsage(b)]);
    expect((await logsOf(a, orgId)).map((l) => l.status)).toEqual([200, 200]);
  });

  it('project mode and retention changes apply to the very next call on every instance', async () => {
    const { orgId, projectId, key } = await gatewaySetup(a, owner);
    await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-org-own-for-instant-1' });
    const lastAuth = () => upstream.requests[upstream.requests.length - 1]!.headers.authorization;
    // b caches the project (hybrid: the organization's own key pays).
    expect((await chat(b, key)).status).toBe(200);
    expect((await chat(b, key)).status).toBe(200);
    expect(lastAuth()).toBe('Bearer sk-org-own-for-instant-1');
    // b's live events (project.updated, organization.updated) now arrive half a second late, as
    // under load: only the acknowledged invalidation can make b's next call right.
    const busB = b.services.bus as unknown as { onNotification: (channel: string, payload?: string) => void };
    const deliver = busB.onNotification.bind(busB);
    busB.onNotification = (channel, payload) => void setTimeout(() => deliver(channel, payload), 500);
    try {
      // Changed through a: b's very next call already uses credits (the operator key).
      await owner.client.project.update.mutate({ projectId, mode: 'credits' });
      expect((await chat(b, key)).status).toBe(200);
      expect(lastAuth()).toBe('Bearer sk-operator-openai');

      let org = await owner.client.organization.get.query({ orgId });
      org = await owner.client.organization.update.mutate({ orgId, version: org.version, retentionLevel: 'retain' });
      expect((await chat(b, key)).status).toBe(200);
      org = await owner.client.organization.update.mutate({ orgId, version: org.version, retentionLevel: 'none' });
      expect((await chat(b, key)).status).toBe(200);
      await flushUsage(b);
      const bodies = (await logsOf(a, orgId)).map((l) => l.request_body !== null);
      // Only the call made while retention was on kept its body.
      expect(bodies).toEqual([false, false, false, true, false]);

      // Deleted through a: its keys stop working on b at once.
      await owner.client.organization.delete.mutate({ orgId, confirmName: org.name });
      expect((await chat(b, key)).status).toBe(401);
    } finally {
      busB.onNotification = deliver;
    }
  });

  it('a cache listener that loses its connection drops its caches and comes back; nothing stale is served meanwhile', async () => {
    const first = await gatewaySetup(a, owner);
    expect((await chat(b, first.key)).status).toBe(200);
    expect((await chat(b, first.key)).status).toBe(200); // cached on b
    const listeners = () => sql<{ pid: number }>(a, "select pid from pg_stat_activity where application_name = 'gateway-cache-listener' and datname = current_database()");
    const before = await listeners();
    expect(before).toHaveLength(2);
    for (const { pid } of before) await sql(a, 'select pg_terminate_backend(?)', [pid]);
    // Revoked while no instance listens (or while they reconnect): b must not answer from its cache.
    await owner.client.apiKey.revoke.mutate({ apiKeyId: first.apiKeyId });
    expect((await chat(b, first.key)).status).toBe(401);
    await eventually(async () => (await listeners()).filter((l) => !before.some((o) => o.pid === l.pid)).length === 2, 10_000, 'both listeners to reconnect');
    // Live invalidation works again after the reconnect.
    const second = await gatewaySetup(a, owner);
    expect((await chat(b, second.key)).status).toBe(200);
    expect((await chat(b, second.key)).status).toBe(200);
    await owner.client.apiKey.revoke.mutate({ apiKeyId: second.apiKeyId });
    expect((await chat(b, second.key)).status).toBe(401);
  });

  it('a revoke answers only once every instance has dropped the key: a paused instance holds it up', async () => {
    const child = await startChildInstance(a.databaseUrl, 60_000, fakeUpstreamEnv(upstream.url));
    const resume = () => process.kill(child.pid, 'SIGCONT');
    try {
      const { apiKeyId, key } = await gatewaySetup(a, owner);
      expect((await chat(child, key)).status).toBe(200);
      expect((await chat(child, key)).status).toBe(200); // served from the child's cache
      // The child cannot read its invalidation while stopped; the revoke must wait for it.
      process.kill(child.pid, 'SIGSTOP');
      const started = performance.now();
      const revoked = owner.client.apiKey.revoke.mutate({ apiKeyId });
      const timer = setTimeout(resume, 400);
      await revoked;
      clearTimeout(timer);
      resume();
      expect(performance.now() - started).toBeGreaterThanOrEqual(350);
      expect((await chat(child, key)).status).toBe(401);
    } finally {
      resume();
      await child.stop();
    }
  });
});

describe('provider keys', () => {
  it('are sealed at rest, shown by their last 4 only, rotated and disabled', async () => {
    const { orgId, key } = await gatewaySetup(a, owner, { credits: '0' });
    const created = await owner.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-first-secret-ABCD' });
    expect(created).toMatchObject({ provider: 'openai', name: 'openai', last4: 'ABCD', status: 'active', baseUrl: null });
    expect(JSON.stringify(await owner.client.providerKey.list.query({ orgId }))).not.toContain('sk-first-secret');
    const [row] = await sql<{ sealed_key: string }>(a, 'select sealed_key from provider_key where id = ?', [created.id]);
    expect(row!.sealed_key).not.toContain('secret');
    expect(a.services.secretBox.open(row!.sealed_key)).toBe('sk-first-secret-ABCD');

    // b caches the credential; rotating on a must reach b before its next call.
    expect((await chat(b, key)).status).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe('Bearer sk-first-secret-ABCD');
    const rotated = await owner.client.providerKey.update.mutate({ providerKeyId: created.id, key: 'sk-second-secret-WXYZ' });
    expect(rotated.last4).toBe('WXYZ');
    expect((await chat(b, key)).status).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe('Bearer sk-second-secret-WXYZ');

    // Disabled: hybrid falls back to credits, of which there are none.
    await owner.client.providerKey.update.mutate({ providerKeyId: created.id, status: 'disabled' });
    expect((await chat(b, key)).status).toBe(402);
    await owner.client.providerKey.update.mutate({ providerKeyId: created.id, status: 'active' });
    expect((await chat(b, key)).status).toBe(200);
    await owner.client.providerKey.delete.mutate({ providerKeyId: created.id });
    expect((await chat(b, key)).status).toBe(402);
    expect(await owner.client.providerKey.list.query({ orgId })).toEqual([]);
  });

  it('validates provider, name, base URL and options; names are unique in the organization', async () => {
    const { orgId } = await gatewaySetup(a, owner);
    await join(orgId, developer, 'developer');
    expect(await codeOf(developer.client.providerKey.list.query({ orgId }))).toBe('FORBIDDEN');
    expect(await codeOf(developer.client.providerKey.create.mutate({ orgId, provider: 'openai', key: 'sk-dev-should-not' }))).toBe('FORBIDDEN');
    const bad: Parameters<typeof owner.client.providerKey.create.mutate>[0][] = [
      { orgId, provider: 'custom', name: 'no-url', key: 'custom-key-1' },
      { orgId, provider: 'custom', name: 'openai', baseUrl: 'https://x.example/v1', key: 'custom-key-1' },
      { orgId, provider: 'openai', baseUrl: 'https://x.example/v1', key: 'sk-1234567890' },
      { orgId, provider: 'azure', key: 'azure-key-123456', options: { resource: 'bad resource!' } },
      { orgId, provider: 'vertex', key: 'not json at all' },
      { orgId, provider: 'openai', key: 'short' },
      { orgId, provider: 'custom', name: 'bad name/with slash', baseUrl: 'https://x.example/v1', key: 'custom-key-1' },
    ];
    for (const input of bad) expect(await codeOf(owner.client.providerKey.create.mutate(input)), JSON.stringify(input)).toBe('BAD_REQUEST');
    const azure = await owner.client.providerKey.create.mutate({ orgId, provider: 'azure', key: 'azure-key-123456', options: { resource: 'my-res', deployment: 'gpt-4o' } });
    expect(azure.options).toEqual({ resource: 'my-res', deployment: 'gpt-4o', apiVersion: '2024-10-21' });
    const qwen = await owner.client.providerKey.create.mutate({ orgId, provider: 'alibaba', key: 'dashscope-key-1', options: { region: 'us' } });
    expect(qwen.options).toEqual({ region: 'us' });
    await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'local-llm', baseUrl: 'http://localhost:11434/v1', key: 'ollama-key' });
    expect(await codeOf(owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'Local-LLM', baseUrl: 'http://x.example/v1', key: 'other-key' }))).toBe('CONFLICT');
    expect((await owner.client.providerKey.list.query({ orgId })).map((k) => k.name)).toEqual(['azure', 'alibaba', 'local-llm']);
  });
});

describe('live key events', () => {
  it('every member watching sees API keys and provider keys change, from any instance, without secrets', async () => {
    const { orgId, projectId } = await gatewaySetup(a, owner);
    const live = liveConnection(b.url, { cookie: owner.cookieHeader() });
    try {
      const sub = live.subscribe(orgId);
      await sub.until('subscribed', () => sub.started);
      const { apiKey, key } = await owner.client.apiKey.create.mutate({ projectId, name: 'watched key' });
      await sub.event('apiKey.changed', (e) => e.apiKeyId === apiKey.id && e.change === 'created' && e.projectId === projectId);
      await owner.client.apiKey.revoke.mutate({ apiKeyId: apiKey.id });
      await sub.event('apiKey.changed', (e) => e.apiKeyId === apiKey.id && e.change === 'revoked');
      const pk = await owner.client.providerKey.create.mutate({ orgId, provider: 'anthropic', key: 'sk-ant-live-secret-9876' });
      await sub.event('providerKey.changed', (e) => e.providerKeyId === pk.id && e.change === 'created');
      await owner.client.providerKey.update.mutate({ providerKeyId: pk.id, status: 'disabled' });
      await sub.event('providerKey.changed', (e) => e.providerKeyId === pk.id && e.change === 'updated');
      await owner.client.providerKey.delete.mutate({ providerKeyId: pk.id });
      await sub.event('providerKey.changed', (e) => e.providerKeyId === pk.id && e.change === 'deleted');
      const wire = JSON.stringify(sub.received);
      expect(wire).not.toContain(key);
      expect(wire).not.toContain('live-secret');
    } finally {
      await live.close();
    }
  });
});
