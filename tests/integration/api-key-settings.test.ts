/**
 * API key settings (issue #12, first slice): expiry, enabled, allowed models and providers, and
 * rolling a key with a grace period for its old secret; who may change what (a developer's own key
 * restricted by an admin may only be tightened); each change effective on the next call, also for
 * a key the gateway had cached, and audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const chat = (key: string, model = 'openai/gpt-4o-mini') => rawChat(app, key, { model, messages: [{ role: 'user', content: 'hi' }] });
const errorCode = (res: { json: Record<string, unknown> | null }) => (res.json?.error as { code?: string } | undefined)?.code;

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return 'ok';
  expect(err).toBeInstanceOf(TRPCClientError);
  return (err as { data?: { code?: string } }).data?.code;
}

async function join(orgId: string, role: 'admin' | 'developer'): Promise<Owner> {
  const who = await signUp(app.url, `A ${role}`);
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role });
  await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
  return who;
}

describe('API key settings', () => {
  it('allowed models and providers: other models are refused with 403 model_not_allowed, logged, not charged', async () => {
    const { orgId, apiKeyId, key } = await gatewaySetup(app, owner);
    expect((await chat(key, 'anthropic/claude-haiku-4-5')).status).toBe(200);
    const updated = await owner.client.apiKey.update.mutate({ apiKeyId, allowedModels: ['openai/*', 'claude-haiku-4-5'] });
    expect(updated).toMatchObject({ allowedModels: ['openai/*', 'claude-haiku-4-5'], allowedProviders: null, status: 'active' });
    expect((await chat(key, 'gpt-4o-mini')).status).toBe(200);
    expect((await chat(key, 'anthropic/claude-haiku-4-5-20251001')).status).toBe(200);
    const refused = await chat(key, 'anthropic/claude-sonnet-4-5');
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('model_not_allowed');
    expect(String((refused.json!.error as { message: string }).message)).toContain('openai/*, claude-haiku-4-5');
    await owner.client.apiKey.update.mutate({ apiKeyId, allowedModels: null, allowedProviders: ['anthropic'] });
    expect((await chat(key, 'openai/gpt-4o-mini')).status).toBe(403);
    expect((await chat(key, 'anthropic/claude-sonnet-4-5')).status).toBe(200);
    await flushUsage(app);
    const logs = await logsOf(app, orgId);
    const refusals = logs.filter((l) => l.status === 403);
    expect(refusals).toHaveLength(2);
    expect(refusals.every((l) => l.cost_nanos === '0' && l.paid_by === 'none')).toBe(true);
  });

  it('a disabled key is refused until enabled again; an expired key is refused from its expiry on', async () => {
    const { apiKeyId, key } = await gatewaySetup(app, owner);
    expect((await chat(key)).status).toBe(200);
    expect(await owner.client.apiKey.update.mutate({ apiKeyId, enabled: false })).toMatchObject({ enabled: false, status: 'disabled' });
    const off = await chat(key);
    expect(off.status).toBe(401);
    expect(errorCode(off)).toBe('api_key_disabled');
    await owner.client.apiKey.update.mutate({ apiKeyId, enabled: true });
    expect((await chat(key)).status).toBe(200);

    expect(await codeOf(owner.client.apiKey.update.mutate({ apiKeyId, expiresAt: new Date(Date.now() - 1000) }))).toBe('BAD_REQUEST');
    const expiresAt = new Date(Date.now() + 1500);
    expect((await owner.client.apiKey.update.mutate({ apiKeyId, expiresAt })).expiresAt?.getTime()).toBe(expiresAt.getTime());
    // Still cached by the gateway, still valid until the instant passes.
    expect((await chat(key)).status).toBe(200);
    await until(async () => Date.now() > expiresAt.getTime());
    const expired = await chat(key);
    expect(expired.status).toBe(401);
    expect(errorCode(expired)).toBe('api_key_expired');
    const [listed] = (await owner.client.apiKey.list.query({ projectId: (await sql<{ project_id: string }>(app, 'select project_id from api_key where id = ?', [apiKeyId]))[0]!.project_id })).filter((k) => k.id === apiKeyId);
    expect(listed!.status).toBe('expired');
  });

  it('rolling: the new secret works at once, the old one for its grace period only; without grace it stops at once', async () => {
    const { apiKeyId, key: first } = await gatewaySetup(app, owner);
    expect((await chat(first)).status).toBe(200);
    const { key: second, apiKey } = await owner.client.apiKey.roll.mutate({ apiKeyId, graceSeconds: 2 });
    expect(second).not.toBe(first);
    expect(apiKey.id).toBe(apiKeyId);
    expect(apiKey.previousSecretValidUntil).not.toBeNull();
    expect((await chat(second)).status).toBe(200);
    expect((await chat(first)).status).toBe(200);
    await until(async () => (await chat(first)).status === 401);
    expect((await chat(second)).status).toBe(200);

    const { key: third } = await owner.client.apiKey.roll.mutate({ apiKeyId });
    expect((await chat(second)).status).toBe(401);
    expect((await chat(third)).status).toBe(200);
    expect(await codeOf(owner.client.apiKey.roll.mutate({ apiKeyId, graceSeconds: 86_401 }))).toBe('BAD_REQUEST');
    const audit = await sql<{ action: string }>(app, `select action from audit_log where target_id = ? order by id`, [apiKeyId]);
    expect(audit.map((a) => a.action).filter((a) => a === 'apiKey.rolled')).toHaveLength(2);
  });

  it('a developer changes only their own keys, and only tightens what an admin restricted', async () => {
    const { orgId, projectId, apiKeyId: ownersKey } = await gatewaySetup(app, owner);
    const dev = await join(orgId, 'developer');
    const admin = await join(orgId, 'admin');
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: ownersKey, name: 'mine now' }))).toBe('FORBIDDEN');
    expect(await codeOf(dev.client.apiKey.roll.mutate({ apiKeyId: ownersKey }))).toBe('FORBIDDEN');
    const { apiKey } = await dev.client.apiKey.create.mutate({ projectId, name: 'dev key', rpmLimit: 100 });
    // Their own key, unrestricted by an admin: anything goes.
    await dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, rpmLimit: 500, allowedModels: ['openai/*'] });
    // The admin restricts it.
    expect(await admin.client.apiKey.update.mutate({ apiKeyId: apiKey.id, rpmLimit: 60, allowedModels: ['openai/gpt-4o-mini', 'openai/gpt-4.1-mini'] })).toMatchObject({ restrictedByAdmin: true });
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, rpmLimit: 61 }))).toBe('FORBIDDEN');
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, rpmLimit: null }))).toBe('FORBIDDEN');
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, allowedModels: ['openai/*'] }))).toBe('FORBIDDEN');
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, allowedModels: null }))).toBe('FORBIDDEN');
    // Tightening is fine, and so are the name and a roll.
    expect(await dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, rpmLimit: 30, allowedModels: ['openai/gpt-4o-mini'], name: 'renamed' })).toMatchObject({ rpmLimit: 30, allowedModels: ['openai/gpt-4o-mini'], name: 'renamed' });
    await dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, enabled: false });
    expect(await codeOf(dev.client.apiKey.update.mutate({ apiKeyId: apiKey.id, enabled: true }))).toBe('FORBIDDEN');
    expect(await admin.client.apiKey.update.mutate({ apiKeyId: apiKey.id, enabled: true })).toMatchObject({ enabled: true });
    expect((await dev.client.apiKey.roll.mutate({ apiKeyId: apiKey.id })).key).toMatch(/^sk-gw-/);
    const rows = await sql<{ action: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null }>(
      app,
      `select action, before, after from audit_log where target_id = ? and action = 'apiKey.updated' order by id`,
      [apiKey.id],
    );
    expect(rows.length).toBe(5);
    // Only what changed is recorded.
    expect(rows[1]!.after).toEqual({ rpmLimit: 60, allowedModels: ['openai/gpt-4o-mini', 'openai/gpt-4.1-mini'] });
    expect(await codeOf(admin.client.apiKey.update.mutate({ apiKeyId: apiKey.id, allowedModels: ['bad pattern!'] }))).toBe('BAD_REQUEST');
    await admin.client.apiKey.revoke.mutate({ apiKeyId: apiKey.id });
    expect(await codeOf(admin.client.apiKey.update.mutate({ apiKeyId: apiKey.id, name: 'x' }))).toBe('PRECONDITION_FAILED');
  });
});
