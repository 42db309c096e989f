/**
 * Every response carries an X-Request-Id (the caller's when it is a plain token, else a new UUID),
 * and the one access log line of that request has the same id; streamed gateway answers carry it
 * too. Successful /healthz probes and /metrics scrapes are not logged at info.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type BuiltApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, newOwner, rawChat } from '../helpers/gateway.js';
import { waitFor } from '../helpers/billing.js';
import type { TestApp } from '../helpers/app.js';

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  url?: string;
  status?: number;
  method?: string;
  ms?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const lines: LogLine[] = [];
let upstream: FakeUpstream;
let built: BuiltApp;
let app: TestApp;
let key: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  const databaseUrl = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-test-data-')),
    APP_SECRET: 'test-secret-test-secret-test-secret-0123456789',
    ...fakeUpstreamEnv(upstream.url),
  });
  // The process logger as in production (info), written to memory.
  const stream = { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) };
  built = await buildApp({ config, databaseUrl, logger: { level: 'info', stream } });
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const address = built.app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  built.services.appUrl = url;
  app = { ...built, url, databaseUrl };
  const owner = await newOwner(app);
  ({ key } = await gatewaySetup(app, owner));
});
afterAll(async () => {
  await built?.close();
  await upstream?.close();
});

const requestLines = (reqId: string) => lines.filter((l) => l.msg === 'request' && l.reqId === reqId);
const lineOf = (reqId: string) => waitFor(async () => requestLines(reqId)[0], 5_000, `the log line of ${reqId}`);

describe('request ids and access logs', () => {
  it('gives each response an id that its one log line carries', async () => {
    const res = await fetch(`${app.url}/trpc/organization.list`);
    expect(res.status).toBe(401);
    const id = res.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    const line = await lineOf(id);
    expect(line).toMatchObject({ level: 30, method: 'GET', url: '/trpc/organization.list', status: 401 });
    expect(typeof line.ms).toBe('number');
    expect(requestLines(id)).toHaveLength(1);
    const other = await fetch(`${app.url}/trpc/organization.list`);
    expect(other.headers.get('x-request-id')).not.toBe(id);
  });

  it("keeps the caller's X-Request-Id when it is a plain token, and replaces any other", async () => {
    const given = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { 'x-request-id': 'proxy-1234.abc' });
    expect(given.status).toBe(200);
    expect(given.headers.get('x-request-id')).toBe('proxy-1234.abc');
    expect(await lineOf('proxy-1234.abc')).toMatchObject({ url: '/v1/chat/completions', status: 200, method: 'POST' });

    for (const bad of ['has spaces in it', 'x'.repeat(200), '<script>']) {
      const res = await fetch(`${app.url}/healthz`, { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(UUID);
    }
  });

  it('sends the id on streamed gateway answers, logging the call once', async () => {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream [chunks:3]' }] }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const id = res.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    expect(await res.text()).toContain('[DONE]');
    expect(await lineOf(id)).toMatchObject({ url: '/v1/chat/completions', status: 200 });
    await flushUsage(app);
    expect(requestLines(id)).toHaveLength(1);
  });

  it('does not log successful health checks and scrapes at info', async () => {
    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).toBe(200);
    const scrape = await fetch(`${app.url}/metrics`);
    expect(scrape.status).toBe(200);
    // A later request's line is written after theirs would have been.
    const marker = await fetch(`${app.url}/trpc/organization.list`);
    await lineOf(marker.headers.get('x-request-id')!);
    expect(requestLines(health.headers.get('x-request-id')!)).toHaveLength(0);
    expect(requestLines(scrape.headers.get('x-request-id')!)).toHaveLength(0);
    expect(lines.some((l) => l.url === '/healthz' || l.url === '/metrics')).toBe(false);
  });
});
