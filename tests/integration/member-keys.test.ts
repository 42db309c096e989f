/**
 * A member who is removed, or leaves, takes their API keys with them: the keys they created are
 * revoked on every instance's gateway before the command answers, unless the remover transfers
 * them to a member who stays (then they keep working and show the new owner).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let a: TestApp;
let b: TestApp;
let owner: Owner;

const chat = (app: Pick<TestApp, 'url'>, key: string) => rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

async function join(orgId: string, name: string, role: 'admin' | 'developer' = 'developer'): Promise<Owner> {
  const who = await signUp(a.url, name);
  const { inviteUrl } = await owner.client.team.invite.mutate({ orgId, email: who.email, role });
  await who.client.team.acceptInvitation.mutate({ token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1) });
  return who;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return 'ok';
  expect(err).toBeInstanceOf(TRPCClientError);
  return (err as { data?: { code?: string } }).data?.code;
}

/** Two keys of `who` in the organization's default project, each warmed into both instances' caches. */
async function keysOf(who: Owner, projectId: string) {
  const keys = [];
  for (const name of ['one', 'two']) {
    const { apiKey, key } = await who.client.apiKey.create.mutate({ projectId, name: `${name} of ${who.user.name}` });
    expect((await chat(a, key)).status).toBe(200);
    expect((await chat(b, key)).status).toBe(200);
    expect((await chat(b, key)).status).toBe(200); // served from b's cache now
    keys.push({ id: apiKey.id, key });
  }
  return keys;
}

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  a = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  b = await startTestApp({ databaseUrl: a.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
  await upstream?.close();
});

describe('removing a member', () => {
  it("revokes the keys they created, on every instance, before it answers; the members list counted them", async () => {
    const { orgId, projectId, key: ownersKey } = await gatewaySetup(a, owner);
    const dev = await join(orgId, 'Departing Developer');
    const keys = await keysOf(dev, projectId);
    const members = await owner.client.team.members.query({ orgId });
    expect(members.find((m) => m.userId === dev.user.id)?.activeApiKeys).toBe(2);
    expect(members.find((m) => m.userId === owner.user.id)?.activeApiKeys).toBe(1);

    const result = await owner.client.team.removeMember.mutate({ orgId, userId: dev.user.id });
    expect(result.apiKeys).toEqual({ revoked: 2, transferred: 0, transferredTo: null });
    // The very next call, on either instance (b had them cached), is refused.
    for (const { key } of keys) {
      expect((await chat(b, key)).status).toBe(401);
      expect((await chat(a, key)).status).toBe(401);
    }
    expect((await chat(b, ownersKey)).status).toBe(200);
    const listed = await owner.client.apiKey.list.query({ projectId });
    for (const { id } of keys) expect(listed.find((k) => k.id === id)).toMatchObject({ status: 'revoked' });
    const [revokedBy] = await sql<{ revoked_by: string }>(a, 'select distinct revoked_by from api_key where id in (?, ?)', [keys[0]!.id, keys[1]!.id]);
    expect(revokedBy!.revoked_by).toBe(owner.user.id);
    const audit = await sql<{ action: string; n: string }>(a, `select action, count(*) as n from audit_log where org_id = ? and action in ('apiKey.revoked', 'member.removed') group by action order by action`, [orgId]);
    expect(audit).toEqual([
      { action: 'apiKey.revoked', n: '2' },
      { action: 'member.removed', n: '1' },
    ]);
  });

  it('transfers them instead to a member who stays: they keep working and show the new owner', async () => {
    const { orgId, projectId } = await gatewaySetup(a, owner);
    const dev = await join(orgId, 'Moving Developer');
    const heir = await join(orgId, 'Staying Admin', 'admin');
    const keys = await keysOf(dev, projectId);

    // Not to the departing member, nor to someone outside the organization.
    expect(await codeOf(owner.client.team.removeMember.mutate({ orgId, userId: dev.user.id, transferKeysTo: dev.user.id }))).toBe('BAD_REQUEST');
    const outsider = await signUp(a.url, 'Outsider');
    expect(await codeOf(owner.client.team.removeMember.mutate({ orgId, userId: dev.user.id, transferKeysTo: outsider.user.id }))).toBe('NOT_FOUND');
    expect((await owner.client.team.members.query({ orgId })).some((m) => m.userId === dev.user.id)).toBe(true);

    const result = await owner.client.team.removeMember.mutate({ orgId, userId: dev.user.id, transferKeysTo: heir.user.id });
    expect(result.apiKeys).toEqual({ revoked: 0, transferred: 2, transferredTo: heir.user.id });
    for (const { key } of keys) {
      expect((await chat(b, key)).status).toBe(200);
      expect((await chat(a, key)).status).toBe(200);
    }
    const listed = await owner.client.apiKey.list.query({ projectId });
    for (const { id } of keys) expect(listed.find((k) => k.id === id)).toMatchObject({ status: 'active', createdBy: { id: heir.user.id, name: 'Staying Admin' } });
    expect((await owner.client.team.members.query({ orgId })).find((m) => m.userId === heir.user.id)?.activeApiKeys).toBe(2);
  });

  it('a member who leaves has their keys revoked too', async () => {
    const { orgId, projectId } = await gatewaySetup(a, owner);
    const dev = await join(orgId, 'Leaving Developer');
    const keys = await keysOf(dev, projectId);
    const result = await dev.client.team.leave.mutate({ orgId });
    expect(result.apiKeys).toMatchObject({ revoked: 2 });
    for (const { key } of keys) expect((await chat(b, key)).status).toBe(401);
  });

  it('a key created while its creator is being removed does not survive the removal', async () => {
    const { orgId, projectId } = await gatewaySetup(a, owner);
    for (let round = 0; round < 5; round++) {
      const dev = await join(orgId, `Racing Developer ${round}`);
      const [created, removed] = await Promise.allSettled([
        dev.client.apiKey.create.mutate({ projectId, name: `racing ${round}` }),
        owner.client.team.removeMember.mutate({ orgId, userId: dev.user.id }),
      ]);
      expect(removed.status).toBe('fulfilled');
      if (created.status === 'fulfilled') expect((await chat(b, created.value.key)).status).toBe(401);
      const [alive] = await sql<{ n: string }>(a, 'select count(*) as n from api_key where org_id = ? and created_by = ? and revoked_at is null', [orgId, dev.user.id]);
      expect(alive!.n).toBe('0');
    }
  });
});
