/**
 * With OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach an OTLP/HTTP collector (a local server here):
 * one per gateway call with its provider, model, status and time to first token, one per tRPC
 * procedure, one per job run. Without it, tracing does not start.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { waitFor } from '../helpers/billing.js';
import { flushTraces, startTracing } from '../../server/observability/tracing.js';
import { observedHandler } from '../../server/jobs/observed.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: OtlpValue }[];
  events?: { name: string; timeUnixNano: string }[];
  status?: { code?: number; message?: string };
}
interface Received {
  path: string;
  contentType: string;
  service: string | undefined;
  spans: OtlpSpan[];
}

let collector: http.Server;
let collectorUrl: string;
const received: Received[] = [];
let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;
let key: string;

beforeAll(async () => {
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        received.push({
          path: req.url ?? '',
          contentType: String(req.headers['content-type']),
          service: rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
          spans: rs.scopeSpans.flatMap((s) => s.spans),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url, { OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl, OTEL_SERVICE_NAME: 'gateway-under-test' }) });
  owner = await newOwner(app);
  ({ key } = await gatewaySetup(app, owner));
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
  await new Promise((resolve) => collector?.close(resolve));
});

const spans = () => received.flatMap((r) => r.spans);
const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.boolValue);
};
/** Flushes the exporter until a span matching `match` has arrived. */
const spanWhere = (what: string, match: (s: OtlpSpan) => boolean) =>
  waitFor(async () => {
    await flushTraces();
    return spans().find(match);
  }, 10_000, what);

describe('OpenTelemetry traces', () => {
  it('exports a span per gateway call with its provider, model, status and timing', async () => {
    const started = Date.now();
    const ok = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'traced call' }] });
    expect(ok.status).toBe(200);
    const streamed = await rawChat(app, key, { model: 'openai/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'traced stream [chunks:3]' }] });
    expect(streamed.status).toBe(200);
    const failed = await rawChat(app, key, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'broken [status:500]' }] });
    expect(failed.status).toBe(502);

    const call = await spanWhere('a gateway span', (s) => s.name === 'gateway chat.completions' && attr(s, 'gateway.streamed') === false && attr(s, 'http.response.status_code') === 200);
    expect(call.kind).toBe(2); // OTLP's SPAN_KIND_SERVER
    expect(attr(call, 'gen_ai.system')).toBe('openai');
    expect(attr(call, 'gen_ai.request.model')).toBe('gpt-4o-mini');
    expect(attr(call, 'gateway.endpoint')).toBe('chat.completions');
    const start = Number(BigInt(call.startTimeUnixNano) / 1_000_000n);
    const end = Number(BigInt(call.endTimeUnixNano) / 1_000_000n);
    expect(start).toBeGreaterThanOrEqual(started - 5);
    expect(end).toBeGreaterThanOrEqual(start);
    expect(end).toBeLessThanOrEqual(Date.now());

    const stream = await spanWhere('a streamed gateway span', (s) => s.name === 'gateway chat.completions' && attr(s, 'gateway.streamed') === true);
    expect(stream.events?.map((e) => e.name)).toEqual(['first token']);

    const error = await spanWhere('a failed gateway span', (s) => s.name === 'gateway chat.completions' && attr(s, 'http.response.status_code') === 502);
    expect(error.status?.code).toBe(2); // STATUS_CODE_ERROR
    expect(error.status?.message).toMatch(/openai/);

    expect(received.every((r) => r.path === '/v1/traces' && r.contentType.startsWith('application/json'))).toBe(true);
    expect(received.every((r) => r.service === 'gateway-under-test')).toBe(true);
  });

  it('exports a span per tRPC procedure', async () => {
    await owner.client.organization.list.query();
    await expect(owner.client.organization.get.query({ orgId: '00000000-0000-4000-8000-000000000000' })).rejects.toThrow();
    const list = await spanWhere('a procedure span', (s) => s.name === 'trpc organization.list');
    expect(attr(list, 'rpc.system')).toBe('trpc');
    expect(attr(list, 'trpc.type')).toBe('query');
    expect(list.status?.code ?? 0).toBe(0);
    // A caller's mistake is not a server error.
    const missing = await spanWhere('a NOT_FOUND procedure span', (s) => s.name === 'trpc organization.get');
    expect(missing.status?.code ?? 0).toBe(0);
  });

  it('exports a span per job run', async () => {
    await observedHandler('traced-queue', async () => {})();
    await expect(
      observedHandler('traced-failing-queue', async () => {
        throw new Error('no luck');
      })(),
    ).rejects.toThrow();
    const ok = await spanWhere('a job span', (s) => s.name === 'job traced-queue');
    expect(attr(ok, 'messaging.destination.name')).toBe('traced-queue');
    const failed = await spanWhere('a failed job span', (s) => s.name === 'job traced-failing-queue');
    expect(failed.status).toMatchObject({ code: 2, message: 'no luck' });
  });

  it('stays off without an endpoint', async () => {
    expect(await startTracing({ serviceName: 'x' }, { info: () => {} })).toBeNull();
  });
});
