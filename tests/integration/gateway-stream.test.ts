/**
 * Chat completion streams from an OpenAI-compatible upstream: the events go to the client as the
 * upstream sent them (no re-serialization), split anywhere across reads, and usage is still read
 * and charged exactly; usage goes to the client only when it asked for it (stream_options).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, registerFakeRoute, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, gatewaySetup, logsOf, newOwner, rawChat, type Owner } from '../helpers/gateway.js';
import { costNanos, findModel } from '../../shared/models.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The upstream's own spelling: spaces after separators, an escaped character, raw multi-byte text.
const content = [
  'data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "caf\\u00e9 "}, "finish_reason": null}], "usage": null}\n\n',
  'data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": "世界 🙂"}, "finish_reason": null}], "usage": null}\n\n',
  'data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": null}\n\n',
];
const usageEvent = 'data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}}\n\n';
const upstreamBytes = Buffer.from(`${content.join('')}${usageEvent}data: [DONE]\n\n`);

// [raw-stream]: the stream above, written in pieces cut inside events and inside UTF-8 characters.
registerFakeRoute('/chat/completions', async ({ res, rawBody }) => {
  if (!rawBody.includes('[raw-stream]')) return false;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const world = upstreamBytes.indexOf(Buffer.from('世'));
  const emoji = upstreamBytes.indexOf(Buffer.from('🙂'));
  const cuts = [40, world + 1, emoji + 2, upstreamBytes.indexOf('"usage": {') + 3, upstreamBytes.length];
  let at = 0;
  for (const cut of cuts) {
    res.write(upstreamBytes.subarray(at, cut));
    at = cut;
    await sleep(15);
  }
  res.end();
});

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

const ask = (streamOptions: object | undefined) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'pass it through [raw-stream]' }], stream: true, ...(streamOptions ? { stream_options: streamOptions } : {}) });

describe('a chat completion stream from an OpenAI-compatible upstream', () => {
  it("reaches a client that asked for usage byte for byte as the upstream sent it, and is charged the upstream's usage", async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const before = await balanceOf(app, orgId);
    const res = await rawChat(app, key, ask({ include_usage: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.text).toBe(upstreamBytes.toString('utf8'));
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    const cost = costNanos(findModel('openai', 'gpt-4o-mini')!.nanosPerMTok, { inputTokens: 21, outputTokens: 4, cachedTokens: 0 });
    expect(log).toMatchObject({ streamed: true, status: 200, input_tokens: 21, output_tokens: 4, cost_nanos: String(cost), canceled: false });
    expect(log!.ttft_ms).not.toBeNull();
    expect(before - (await balanceOf(app, orgId))).toBe(cost);
  });

  it('leaves usage out for a client that did not ask (the null usage fields and the usage chunk), metered the same', async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const res = await rawChat(app, key, ask(undefined));
    expect(res.status).toBe(200);
    const events = res.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
    expect(chunks).toEqual(content.map((e) => {
      const { usage: _, ...rest } = JSON.parse(e.slice('data: '.length)) as Record<string, unknown>;
      return rest;
    }));
    expect(chunks.map((c) => (c.choices as { delta: { content?: string } }[])[0]!.delta.content ?? '').join('')).toBe('café 世界 🙂');
    await flushUsage(app);
    const [log] = await logsOf(app, orgId);
    expect(log).toMatchObject({ streamed: true, status: 200, input_tokens: 21, output_tokens: 4 });
  });
});
