/**
 * No server-side request forgery through provider keys: with GATEWAY_ALLOW_PRIVATE_UPSTREAMS off
 * (the default), a custom provider's base URL that points at loopback, private, link-local or
 * metadata addresses is refused when saved, and again when the gateway connects (a key saved
 * earlier, or a DNS answer that changed, reaches nothing). The operator's own base URLs (the fake
 * upstream on 127.0.0.1 here) stay trusted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { call } from '../helpers/rpc.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';

let upstream: FakeUpstream;
/** An inward server the operator did not configure (an internal service, say). */
let internal: FakeUpstream;
/** The product as shipped: private upstreams refused. */
let strict: TestApp;
/** The same database served with private upstreams allowed (how keys pointing inward got saved before). */
let lenient: TestApp;
let owner: Owner;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  internal = await startFakeUpstream();
  strict = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'false' }) });
  lenient = await startTestApp({ databaseUrl: strict.databaseUrl, env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(strict);
});
afterAll(async () => {
  await lenient?.close();
  await strict?.close();
  await upstream?.close();
  await internal?.close();
});

async function refusal(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const err = await promise.then(() => null, (e: unknown) => e);
  if (!err) return { code: 'ok', message: '' };
  expect(err).toBeInstanceOf(TRPCClientError);
  return { code: (err as { data?: { code?: string } }).data?.code, message: (err as Error).message };
}

const port = () => new URL(upstream.url).port;

describe('saving a provider key', () => {
  it('refuses base URLs on loopback, private, link-local, CGNAT, unspecified and mapped addresses, and saves nothing', async () => {
    const { orgId } = await gatewaySetup(strict, owner);
    const cases: [string, RegExp][] = [
      [`http://127.0.0.1:${port()}/v1`, /127\.0\.0\.1 is a loopback address/],
      ['http://169.254.169.254/latest/meta-data', /link-local/],
      ['http://10.0.0.5/v1', /10\.0\.0\.5 is a private/],
      ['https://192.168.1.20/v1', /private/],
      ['http://100.64.1.1/v1', /carrier-grade NAT/],
      ['http://0.0.0.0:8080/v1', /unspecified/],
      [`http://[::1]:${port()}/v1`, /loopback/],
      ['http://[fd00:ec2::254]/v1', /unique-local/],
      [`http://[::ffff:127.0.0.1]:${port()}/v1`, /IPv6 form of a loopback/],
      [`http://2130706433:${port()}/v1`, /127\.0\.0\.1 is a loopback/],
      [`http://localhost:${port()}/v1`, /localhost resolves to a loopback address/],
    ];
    for (const [baseUrl, why] of cases) {
      const r = await refusal(owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'inward', baseUrl, key: 'sk-inward-0123456789' }));
      expect(r.code, baseUrl).toBe('BAD_REQUEST');
      expect(r.message, baseUrl).toMatch(why);
      expect(r.message, baseUrl).toMatch(/GATEWAY_ALLOW_PRIVATE_UPSTREAMS/);
    }
    const r = await refusal(owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'files', baseUrl: 'file:///etc/passwd', key: 'sk-inward-0123456789' }));
    expect(r.code).toBe('BAD_REQUEST');
    expect(await sql(strict, 'select id from provider_key where org_id = ?', [orgId])).toEqual([]);
  });

  it('accepts a public address, and refuses moving it inward with an update', async () => {
    const { orgId } = await gatewaySetup(strict, owner);
    const saved = await owner.client.providerKey.create.mutate({ orgId, provider: 'custom', name: 'public', baseUrl: 'https://93.184.215.14/v1', key: 'sk-public-0123456789' });
    const r = await refusal(owner.client.providerKey.update.mutate({ providerKeyId: saved.id, baseUrl: 'http://169.254.169.254/latest' }));
    expect(r.code).toBe('BAD_REQUEST');
    expect(r.message).toMatch(/169\.254\.169\.254 is a link-local address/);
    const [row] = await sql<{ base_url: string }>(strict, 'select base_url from provider_key where id = ?', [saved.id]);
    expect(row!.base_url).toBe('https://93.184.215.14/v1');
  });
});

describe('calling through a provider key', () => {
  it('refuses at connect time a key that points inward (by address or by name), with a 502 in OpenAI shape, and never reaches it', async () => {
    const { orgId, key } = await gatewaySetup(strict, owner, { mode: 'provider-keys' });
    // Saved where private upstreams were allowed: the strict instance must still not call them.
    const as = { cookie: owner.cookieHeader() };
    for (const [name, baseUrl] of [
      ['by-ip', `${internal.url}/v1`],
      ['by-name', `http://localhost:${new URL(internal.url).port}/v1`],
    ]) {
      const saved = await call(lenient.url, 'mutation', 'providerKey.create', { orgId, provider: 'custom', name, baseUrl, key: 'sk-inward-0123456789' }, as);
      expect(saved.ok, name).toBe(true);
    }
    const before = internal.requests.length;
    for (const [model, why] of [
      ['by-ip/llama', /127\.0\.0\.1 is a loopback address/],
      ['by-name/llama', /localhost resolves to a loopback address/],
    ] as const) {
      const res = await rawChat(strict, key, { model, messages: [{ role: 'user', content: 'what is at 127.0.0.1?' }] });
      expect(res.status, model).toBe(502);
      const error = (res.json as { error?: { code?: string; type?: string; message?: string } }).error;
      expect(error?.type, model).toBe('upstream_error');
      expect(error?.code, model).toBe('upstream_address_refused');
      expect(error?.message, model).toMatch(why);
    }
    expect(internal.requests.length).toBe(before);
    // The instance that allows private upstreams reaches the same keys (the refusal is the policy, not the keys).
    for (const model of ['by-ip/llama', 'by-name/llama']) {
      expect((await rawChat(lenient, key, { model, messages: [{ role: 'user', content: 'hi' }] })).status, model).toBe(200);
    }
    expect(internal.requests.length).toBe(before + 2);
  });

  it('still calls the operator\'s own upstream URLs from the environment, private as they are', async () => {
    const { key } = await gatewaySetup(strict, owner);
    const res = await rawChat(strict, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
  });
});
