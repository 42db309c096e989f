/**
 * CORS on /v1: preflights without a key, the project's allowed origins (default any: `*`; exact
 * origins when set, others refused 403 before any upstream call and without an allow-origin
 * header), exposed headers (retry-after and the gateway's own), streamed answers included; the
 * dashboard's /trpc sends no CORS headers at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { call } from '../helpers/rpc.js';
import { gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';

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

const hi = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi from a browser' }] };

describe('CORS on /v1', () => {
  it('answers a preflight without a key, allowing the SDK headers', async () => {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os, x-stainless-retry-count, anthropic-version' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = res.headers.get('access-control-allow-headers')!.split(', ');
    for (const h of ['authorization', 'content-type', 'x-api-key', 'anthropic-version', 'anthropic-beta', 'x-session-id', 'x-stainless-os', 'x-stainless-retry-count']) expect(allowed).toContain(h);
    // Preflights for any /v1 path, embeddings and model ids with slashes included.
    expect((await fetch(`${app.url}/v1/models/openai/gpt-4o-mini`, { method: 'OPTIONS', headers: { origin: 'https://x.test', 'access-control-request-method': 'GET' } })).status).toBe(204);
  });

  it('allows any origin by default, exposing the headers scripts need', async () => {
    const { key } = await gatewaySetup(app, owner);
    const res = await rawChat(app, key, hi, { origin: 'https://anything.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = res.headers.get('access-control-expose-headers')!;
    for (const h of ['retry-after', 'x-request-id', 'x-gateway-cache', 'x-gateway-provider', 'x-gateway-attempts', 'x-ratelimit-remaining-requests']) expect(exposed).toContain(h);
    // The other endpoints too (Anthropic's messages with x-api-key, embeddings).
    const messages = await fetch(`${app.url}/v1/messages`, {
      method: 'POST',
      headers: { origin: 'https://anything.example', 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect([messages.status, messages.headers.get('access-control-allow-origin')]).toEqual([200, '*']);
    // Errors are readable by the page too (a bad key, a 429 with retry-after).
    const bad = await rawChat(app, 'sk-gw-not-a-real-key-000000000000000000000000', hi, { origin: 'https://anything.example' });
    expect([bad.status, bad.headers.get('access-control-allow-origin')]).toEqual([401, '*']);
    const limited = await rawChat(app, key, { ...hi, messages: [{ role: 'user', content: 'x [status:429]' }] }, { origin: 'https://anything.example' });
    expect([limited.status, limited.headers.get('access-control-allow-origin'), limited.headers.get('retry-after')]).toEqual([429, '*', '7']);
  });

  it("enforces the project's allowed origins: exact origins echoed, others refused before any upstream call", async () => {
    const { projectId, key } = await gatewaySetup(app, owner);
    const updated = await owner.client.project.update.mutate({ projectId, allowedOrigins: ['https://App.Example.com/', 'http://localhost:5173'] });
    expect(updated.allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);

    const ok = await rawChat(app, key, hi, { origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(ok.headers.get('vary')).toContain('origin');

    const stream = await rawChat(app, key, { ...hi, stream: true }, { origin: 'http://localhost:5173' });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(stream.text).toContain('[DONE]');

    const before = upstream.requests.length;
    const refusedMessages = await fetch(`${app.url}/v1/messages`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect([refusedMessages.status, refusedMessages.headers.get('access-control-allow-origin')]).toEqual([403, null]);
    const refused = await rawChat(app, key, hi, { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect((refused.json as { error: { code: string } }).error.code).toBe('origin_not_allowed');
    expect(upstream.requests.length).toBe(before);
    // Server-side callers send no Origin: not affected.
    expect((await rawChat(app, key, hi)).status).toBe(200);
    // Back to any origin.
    await owner.client.project.update.mutate({ projectId, allowedOrigins: [] });
    expect((await rawChat(app, key, hi, { origin: 'https://evil.example' })).headers.get('access-control-allow-origin')).toBe('*');
  });

  it('validates allowed origins as scheme://host[:port]', async () => {
    const { projectId } = await gatewaySetup(app, owner);
    for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://files.example.com', '*']) {
      const res = await call(app.url, 'mutation', 'project.update', { projectId, allowedOrigins: [bad] }, { cookie: owner.cookieHeader() });
      expect(res.status, bad).toBe(400);
    }
  });

  it('sends no CORS headers from the dashboard API (/trpc stays same-origin)', async () => {
    const preflight = await fetch(`${app.url}/trpc/auth.me`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const res = await fetch(`${app.url}/trpc/auth.me`, { headers: { origin: 'https://evil.example', cookie: owner.cookieHeader() } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect([...res.headers.keys()].some((h) => h.startsWith('access-control-'))).toBe(false);
  });
});
