/**
 * The attacker's tour: cross-tenant reads and writes, role escalation, cross-site requests,
 * oversized and deeply nested bodies, invitation misuse. Every attempt must be refused with a clear
 * tRPC or OpenAI-shaped error and change nothing.
 *
 * The app trusts only a proxy at 10.255.255.1 (TRUST_PROXY), so the test client (127.0.0.1) is an
 * untrusted client whose X-Forwarded-* headers must be ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import superjson from 'superjson';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, tokenClient, uniqueEmail } from '../helpers/client.js';
import { raiseOrganizationLimit, settle, sql, tableChecksums } from '../helpers/db-state.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, rawChat } from '../helpers/gateway.js';
import { call, listProcedures, type Caller, type Outcome } from '../helpers/rpc.js';
import { buildWorld, ORG_FIXTURES, type World } from '../helpers/world.js';

let upstream: FakeUpstream;
let app: TestApp;
let w: World;
/** The attacker: signed up, owner of an organization of their own, member of nothing of the victims'. */
let attackerOrgId: string;
let attacker: World['people']['outsider'];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { TRUST_PROXY: '10.255.255.1' }) });
  w = await buildWorld(app);
  attacker = w.people.outsider;
  attackerOrgId = (await attacker.client.organization.list.query())[0]!.id;
  await raiseOrganizationLimit(app, attacker.user.id);
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

const REFUSED = ['NOT_FOUND', 'FORBIDDEN', 'BAD_REQUEST', 'UNAUTHORIZED', 'CONFLICT', 'PRECONDITION_FAILED'];
const as = (who: { cookieHeader(): string }, extra: Partial<Caller> = {}): Caller => ({ cookie: who.cookieHeader(), ...extra });

/** Runs `attempts` and checks that no table changed (after-commit emails settled). */
async function expectNothingChanged(attempts: () => Promise<void>) {
  await settle(app);
  const before = await tableChecksums(app);
  await attempts();
  await settle(app);
  const after = await tableChecksums(app);
  expect(Object.keys(after).filter((t) => before[t] !== after[t])).toEqual([]);
}

function expectRefused(o: Outcome, where: string, codes = REFUSED) {
  expect.soft(o.ok, where).toBe(false);
  if (o.ok) return;
  expect.soft(codes, `${where}: ${o.code} ${o.message}`).toContain(o.code);
  expect.soft(o.message.length, where).toBeGreaterThan(0);
}

describe('cross-tenant', () => {
  it('every org-scoped procedure refuses the victim organization\'s ids, alone or under the attacker\'s own orgId', async () => {
    const procedures = listProcedures().filter((p) => ORG_FIXTURES[p.path] && p.type !== 'subscription');
    const attempts: { path: string; type: 'query' | 'mutation'; input: Record<string, unknown> }[] = [];
    for (const proc of procedures) {
      const input = (await ORG_FIXTURES[proc.path]!.input(w, 'owner')) as Record<string, unknown>;
      const ids = Object.keys(input).filter((k) => /Id$/.test(k) && k !== 'orgId');
      // The victim's resource ids under the attacker's own organization (a mixed-tenant input)...
      if ('orgId' in input && ids.length > 0) attempts.push({ path: proc.path, type: proc.type as 'query' | 'mutation', input: { ...input, orgId: attackerOrgId } });
      // ...and the victim's input exactly as is (the attacker is a member of nothing of theirs).
      attempts.push({ path: proc.path, type: proc.type as 'query' | 'mutation', input });
    }
    await expectNothingChanged(async () => {
      for (const a of attempts) expectRefused(await call(app.url, a.type, a.path, a.input, as(attacker)), `${a.path} ${JSON.stringify(a.input).slice(0, 160)}`);
    });
  });

  it('refuses the victim\'s real ledger entries, request logs, members and personal tokens by id', async () => {
    const victim = w.people.owner;
    const { orgId: victimOrg, key } = await gatewaySetup(app, victim);
    expect((await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'secret prompt' }] })).status).toBe(200);
    await flushUsage(app);
    const [log] = await logsOf(app, victimOrg);
    const [entry] = await sql<{ id: string }>(app, 'select id from credit_ledger where org_id = ? order by id limit 1', [victimOrg]);
    const { token: victimToken, id: victimTokenId } = (await victim.client.auth.tokens.create.mutate({ name: 'victim token' })) as { token: string; id: string };
    await expectNothingChanged(async () => {
      const tries: [string, 'query' | 'mutation', Record<string, unknown>][] = [
        ['logs.get', 'query', { orgId: attackerOrgId, logId: log!.id }],
        ['billing.refund', 'mutation', { orgId: attackerOrgId, transactionId: entry!.id, reason: 'mine now' }],
        ['team.updateRole', 'mutation', { orgId: attackerOrgId, userId: victim.user.id, role: 'developer' }],
        ['team.removeMember', 'mutation', { orgId: attackerOrgId, userId: victim.user.id }],
        ['team.removeMember', 'mutation', { orgId: attackerOrgId, userId: attacker.user.id, transferKeysTo: victim.user.id }],
        ['auth.tokens.revoke', 'mutation', { id: victimTokenId }],
        ['logs.list', 'query', { orgId: victimOrg }],
        ['analytics.summary', 'query', { orgId: attackerOrgId, projectId: w.projectId }],
      ];
      for (const [path, type, input] of tries) expectRefused(await call(app.url, type, path, input, as(attacker)), path);
    });
    // The attacker's own lists show none of it.
    const transactions = await call(app.url, 'query', 'billing.transactions', { orgId: attackerOrgId }, as(attacker));
    expect(JSON.stringify(transactions)).not.toContain(entry!.id);
    // The victim's token still works.
    expect((await tokenClient(app.url, victimToken).auth.me.query())?.user.id).toBe(victim.user.id);
  });

  it('a gateway key never reaches another organization\'s provider keys by naming them', async () => {
    const victim = w.people.owner;
    const { orgId: victimOrg } = await gatewaySetup(app, victim);
    await victim.client.providerKey.create.mutate({ orgId: victimOrg, provider: 'custom', name: 'victim-llm', baseUrl: `${upstream.url}/v1`, key: 'sk-victim-secret-0001' });
    const { key } = await gatewaySetup(app, attacker, { mode: 'hybrid' });
    const before = upstream.requests.length;
    const res = await rawChat(app, key, { model: 'victim-llm/llama', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((res.json as { error?: { message?: string } }).error?.message).toBeTruthy();
    expect(upstream.requests.slice(before).some((r) => String(r.headers.authorization).includes('sk-victim-secret'))).toBe(false);
  });

  it('refuses a live subscription to another organization over WebSocket', async () => {
    const socket = await openSocket(as(attacker).cookie!);
    const answer = await nextMessage(socket, () => socket.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'live.organization', input: superjson.serialize({ orgId: w.orgId }) } })));
    socket.close();
    expect(errorCode(answer)).toBe('NOT_FOUND');
  });
});

describe('role escalation', () => {
  it('a developer cannot promote themselves or invite admins; an admin cannot grant, take or remove the owner role', async () => {
    const org = await w.freshOrg();
    const { owner, admin, developer } = w.people;
    await expectNothingChanged(async () => {
      const tries: [typeof owner, string, Record<string, unknown>][] = [
        [developer, 'team.updateRole', { orgId: org.id, userId: developer.user.id, role: 'admin' }],
        [developer, 'team.invite', { orgId: org.id, email: uniqueEmail('dev-invite'), role: 'developer' }],
        [developer, 'team.removeMember', { orgId: org.id, userId: admin.user.id }],
        [developer, 'providerKey.create', { orgId: org.id, provider: 'custom', name: 'dev-key', baseUrl: 'https://llm.example.com/v1', key: 'sk-dev-0123456789' }],
        [developer, 'organization.delete', { orgId: org.id, confirmName: org.name }],
        [admin, 'team.updateRole', { orgId: org.id, userId: admin.user.id, role: 'owner' }],
        [admin, 'team.updateRole', { orgId: org.id, userId: developer.user.id, role: 'owner' }],
        [admin, 'team.updateRole', { orgId: org.id, userId: owner.user.id, role: 'developer' }],
        [admin, 'team.removeMember', { orgId: org.id, userId: owner.user.id }],
        [admin, 'team.invite', { orgId: org.id, email: uniqueEmail('admin-invite'), role: 'owner' }],
        [admin, 'organization.delete', { orgId: org.id, confirmName: org.name }],
      ];
      for (const [who, path, input] of tries) expectRefused(await call(app.url, 'mutation', path, input, as(who)), `${who.user.name}: ${path} ${JSON.stringify(input)}`, ['FORBIDDEN']);
    });
  });
});

describe('cross-site requests', () => {
  const create = (extra: Partial<Caller>) => call(app.url, 'mutation', 'organization.create', { name: `CSRF ${Math.random()}` }, as(attacker, extra));

  it('refuses cookie-bearing mutations from another site, another scheme, or with spoofed forwarding headers', async () => {
    const self = new URL(app.url);
    await expectNothingChanged(async () => {
      expectRefused(await create({ origin: 'https://evil.example' }), 'another site', ['FORBIDDEN']);
      expectRefused(await create({ origin: null, headers: { 'sec-fetch-site': 'cross-site' } }), 'cross-site fetch metadata', ['FORBIDDEN']);
      expectRefused(await create({ headers: { 'sec-fetch-site': 'same-site' } }), 'a sibling subdomain', ['FORBIDDEN']);
      expectRefused(await create({ origin: `https://${self.host}` }), 'same host, https page against the http app', ['FORBIDDEN']);
      expectRefused(await create({ origin: 'https://evil.example', headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } }), 'X-Forwarded-Host from an untrusted client', ['FORBIDDEN']);
      expectRefused(await create({ origin: 'null' }), 'Origin: null', ['FORBIDDEN']);
      // A "simple" cross-site form post (no preflight): not JSON, and not same-origin either.
      const form = await fetch(`${app.url}/trpc/organization.create`, { method: 'POST', headers: { cookie: attacker.cookieHeader(), origin: 'https://evil.example', 'content-type': 'text/plain' }, body: JSON.stringify({ json: { name: 'CSRF form' } }) });
      expect(form.status).toBeGreaterThanOrEqual(400);
      expect(form.status).toBeLessThan(500);
    });
    // The same call from the app's own page goes through (the refusals above are about the origin).
    expect((await create({})).ok).toBe(true);
  });

  it('refuses WebSocket upgrades from another origin, including a spoofed X-Forwarded-Host', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'https://evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }, { origin: app.url.replace('http:', 'https:') }]) {
      const status = await new Promise<number>((resolve) => {
        const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/trpc`, { headers: { cookie: attacker.cookieHeader(), ...headers } });
        socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        socket.once('open', () => {
          socket.close();
          resolve(101);
        });
        socket.once('error', () => resolve(-1));
      });
      expect(status, JSON.stringify(headers)).toBe(403);
    }
  });
});

describe('oversized and deeply nested bodies', () => {
  it('refuses a tRPC body over 1 MB with 413 and a WebSocket message over 1 MB by closing that socket, and keeps serving', async () => {
    await expectNothingChanged(async () => {
      const big = await call(app.url, 'mutation', 'organization.create', { name: 'x'.repeat(1_100_000) }, as(attacker));
      expect(big.status).toBe(413);
      const socket = await openSocket(attacker.cookieHeader());
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      socket.send(JSON.stringify({ id: 1, method: 'mutation', params: { path: 'organization.create', input: superjson.serialize({ name: 'y'.repeat(1_100_000) }) } }));
      expect(await closed).toBe(1009);
    });
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });

  it('answers deeply nested gateway JSON with a 400 in OpenAI shape, not a 500', async () => {
    const { key } = await gatewaySetup(app, attacker);
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    for (const body of [
      `{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":${deep}}`,
      `{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":${deep}}]}`,
    ]) {
      const res = await rawChat(app, key, body);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringMatching(/nests deeper than/) } });
    }
    // JSON schemas of a realistic depth still pass.
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 20; i++) schema = { type: 'object', properties: { next: schema } };
    const ok = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'deep', schema } } });
    expect(ok.status).toBe(200);
  });
});

describe('invitation misuse', () => {
  async function invite(email: string) {
    const { inviteUrl, invitation } = await w.people.owner.client.team.invite.mutate({ orgId: w.orgId, email, role: 'developer' });
    return { token: inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1), id: invitation.id };
  }
  const accept = (who: { cookieHeader(): string }, token: string) => call(app.url, 'mutation', 'team.acceptInvitation', { token }, as(who));
  const statusOf = async (id: string) => (await sql<{ accepted_at: Date | null; revoked_at: Date | null }>(app, 'select accepted_at, revoked_at from invitation where id = ?', [id]))[0];

  it('refuses someone else\'s, a used, an expired and a revoked invitation, and one for an organization you are in', async () => {
    const invitee = await signUp(app.url, 'Ivy Invitee');
    const forInvitee = await invite(invitee.email);
    const expired = await invite(uniqueEmail('late'));
    await sql(app, `update invitation set expires_at = now() - interval '1 minute' where id = ?`, [expired.id]);
    const revoked = await invite(uniqueEmail('revoked'));
    await w.people.owner.client.team.revokeInvitation.mutate({ invitationId: revoked.id });
    await expectNothingChanged(async () => {
      expectRefused(await accept(attacker, forInvitee.token), "someone else's invitation", ['FORBIDDEN']);
      expectRefused(await accept(attacker, expired.token), 'an expired invitation', ['PRECONDITION_FAILED', 'FORBIDDEN']);
      expectRefused(await accept(attacker, revoked.token), 'a revoked invitation', ['PRECONDITION_FAILED', 'FORBIDDEN']);
      expectRefused(await accept(attacker, 'A'.repeat(43)), 'a made-up token', ['NOT_FOUND']);
    });
    expect(await statusOf(forInvitee.id)).toMatchObject({ accepted_at: null, revoked_at: null });
    expect((await accept(invitee, forInvitee.token)).ok).toBe(true);
    await expectNothingChanged(async () => {
      expectRefused(await accept(invitee, forInvitee.token), 'the same invitation twice', ['CONFLICT']);
    });
  });

  it('refuses an invitation for an organization the user already belongs to, leaving it open and the role unchanged', async () => {
    const member = await signUp(app.url, 'Mel Member');
    const pending = await invite(member.email);
    // As if they had joined by another path meanwhile (the invitation predates their membership).
    await sql(app, `insert into membership (id, org_id, user_id, role, created_at) values (gen_random_uuid(), ?, ?, 'developer', now())`, [w.orgId, member.user.id]);
    const [before] = await sql<{ role: string }>(app, 'select role from membership where org_id = ? and user_id = ?', [w.orgId, member.user.id]);
    await expectNothingChanged(async () => {
      const o = await accept(member, pending.token);
      expectRefused(o, 'an invitation to an organization you are in', ['CONFLICT']);
      if (!o.ok) expect(o.message).toMatch(/already a member/);
    });
    expect(await statusOf(pending.id)).toMatchObject({ accepted_at: null, revoked_at: null });
    const [after] = await sql<{ role: string }>(app, 'select role from membership where org_id = ? and user_id = ?', [w.orgId, member.user.id]);
    expect(after!.role).toBe(before!.role);
  });
});

async function openSocket(cookie: string): Promise<WebSocket> {
  const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/trpc`, { headers: { cookie, origin: app.url } });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

async function nextMessage(socket: WebSocket, send: () => void): Promise<unknown> {
  const message = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer over WebSocket')), 10_000);
    socket.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: unknown; result?: { type?: string } };
      if (msg.result?.type === 'started') return;
      clearTimeout(timer);
      resolve(msg);
    });
  });
  send();
  return message;
}

function errorCode(message: unknown): string | undefined {
  const error = (message as { error?: unknown }).error;
  return error ? (superjson.deserialize(error as never) as { data?: { code?: string } }).data?.code : undefined;
}
