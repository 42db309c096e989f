/**
 * POST /v1/messages (Anthropic's Messages API, streaming and not) and POST /v1/messages/count_tokens,
 * with Anthropic's error shape on both. Claude models go natively: to Anthropic the client's body
 * (only `model` replaced) and its anthropic-version / anthropic-beta headers, the answer's bytes
 * back unchanged; to Bedrock's InvokeModel the same body in Bedrock's form, its event stream frames
 * written back out as Anthropic's SSE. Every other model is translated both ways
 * (upstream/anthropic-messages.ts). Metered like chat completions: one record per call, tokens from
 * the upstream's usage, streams charged for what was delivered, cache for non-streaming calls.
 * count_tokens is not metered (no request log row).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenUsage } from '../../../shared/models.js';
import { isDatabaseUnavailable } from '../../db/pg-errors.js';
import { DomainError } from '../../errors.js';
import { cacheKey, readCache, writeCache } from './cache.js';
import { authorizationOf, CallRecord, conversationBody, estimateTokens, outputAsked, onClientGone, openUpstreamStream, RETAINED_BODY_MAX, retained, runAttempts, runCall, signed, targetFor, type GatewayDeps } from './call.js';
import { noFallback, requestModels, sessionOf, withoutModels } from './routing.js';
import { answerChars } from './completions.js';
import { badRequest, fromDomainError, fromUpstreamStatus, GatewayError, upstreamFailed } from './errors.js';
import type { CallerContext } from './runtime.js';
import { SseParser } from './sse.js';
import type { Target } from './targets.js';
import { ANTHROPIC_VERSION, anthropicAdapter, usageOf, type AnthropicUsage } from './upstream/anthropic.js';
import { anthropicErrorBody, estimateInputTokens, MessagesStreamWriter, newMessageId, sseEvent, toAnthropicMessage, toChatRequest, type MessagesRequest } from './upstream/anthropic-messages.js';
import { BEDROCK_ANTHROPIC_VERSION, bedrockAnthropicAdapter, bedrockAnthropicEvents } from './upstream/bedrock.js';
import { openAiUsage, type ChatChunk } from './upstream/types.js';

type Native = 'anthropic' | 'bedrock' | null;

/** Claude through Anthropic's API or Bedrock's InvokeModel goes natively; everything else is translated. */
function nativeOf(target: Target): Native {
  if (target.adapter === anthropicAdapter) return 'anthropic';
  if (target.adapter === bedrockAnthropicAdapter) return 'bedrock';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Routes and Anthropic-shaped errors
// ---------------------------------------------------------------------------------------------

/** A failure as Anthropic's error answer: status (the gateway's usual one), headers, body. */
export function anthropicErrorOf(err: unknown, maxBodyBytes: number, log: GatewayDeps['log']): { status: number; headers: Record<string, string>; body: ReturnType<typeof anthropicErrorBody> } {
  const gw = err instanceof DomainError ? fromDomainError(err) : err;
  if (gw instanceof GatewayError) return { status: gw.status, headers: gw.headers, body: anthropicErrorBody(gw.status, gw.message) };
  if (isDatabaseUnavailable(err)) {
    log.warn?.({ err }, 'gateway call refused: the database is unavailable');
    return { status: 503, headers: { 'retry-after': '2' }, body: anthropicErrorBody(503, 'the gateway cannot reach its database right now; retry in a few seconds') };
  }
  const e = err as FastifyError;
  const status = e.statusCode ?? 500;
  if (status >= 500) {
    log.error({ err }, 'gateway request failed');
    return { status: 500, headers: {}, body: anthropicErrorBody(500, 'something went wrong in the gateway; please retry') };
  }
  const message =
    e.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? `the request body is larger than ${maxBodyBytes} bytes`
      : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'send the request body as application/json'
        : e.code?.startsWith('FST_ERR_CTP')
          ? `the request body is not valid JSON: ${e.message}`
          : e.message;
  return { status, headers: {}, body: anthropicErrorBody(status, message) };
}

/** Registers /v1/messages and /v1/messages/count_tokens (called inside the /v1 scope). */
export async function registerMessagesRoutes(scope: FastifyInstance, deps: GatewayDeps): Promise<void> {
  await scope.register(
    async (messages) => {
      messages.setErrorHandler((err, _req, reply) => {
        const { status, headers, body } = anthropicErrorOf(err, deps.config.maxBodyBytes, deps.log);
        return reply.code(status).headers(headers).send(body);
      });
      messages.setNotFoundHandler((req, reply) =>
        reply.code(404).send(anthropicErrorBody(404, `${req.method} ${req.url.split('?')[0]} is not an endpoint of this gateway (it serves POST /v1/messages and POST /v1/messages/count_tokens)`)),
      );
      const options = { bodyLimit: deps.config.maxBodyBytes };
      messages.post('/', options, (req, reply) => handleMessages(deps, req, reply));
      messages.post('/count_tokens', options, (req, reply) => handleCountTokens(deps, req, reply));
    },
    { prefix: '/messages' },
  );
}

function validate(body: unknown): MessagesRequest {
  return conversationBody(body, '"claude-sonnet-4-5" or "openai/gpt-4o-mini"') as MessagesRequest;
}

const headerOf = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' && v ? v : Array.isArray(v) && v.length ? v.join(',') : undefined;
};

/** An upstream's error answer in the gateway's terms (its retry-after kept). */
function upstreamError(target: Target, status: number, headers: Record<string, string | string[] | undefined>, text: string): GatewayError {
  return fromUpstreamStatus(target.label, status, text, headers);
}

// ---------------------------------------------------------------------------------------------
// The upstream request for each kind of target
// ---------------------------------------------------------------------------------------------

interface Exchange {
  native: Native;
  url: string;
  headers: Record<string, string>;
  payload: string;
}

function nativeBody(native: 'anthropic' | 'bedrock', body: MessagesRequest, target: Target, beta: string | undefined): string {
  if (native === 'anthropic') return JSON.stringify({ ...body, model: target.upstreamModel });
  // Bedrock: the model is in the URL and streaming is the endpoint; betas go in the body.
  const rest: Record<string, unknown> = { ...body };
  delete rest.model;
  delete rest.stream;
  const betas = beta ? beta.split(',').map((s) => s.trim()).filter(Boolean) : [];
  return JSON.stringify({ anthropic_version: BEDROCK_ANTHROPIC_VERSION, ...rest, ...(betas.length ? { anthropic_beta: betas } : {}) });
}

function exchangeFor(req: FastifyRequest, body: MessagesRequest, target: Target, stream: boolean): Exchange {
  const native = nativeOf(target);
  const url = stream ? (target.streamUrl ?? target.url) : target.url;
  const baseHeaders = stream ? (target.streamHeaders ?? target.headers) : target.headers;
  if (native) {
    const beta = headerOf(req, 'anthropic-beta');
    if (native === 'bedrock') return { native, url, headers: baseHeaders, payload: nativeBody(native, body, target, beta) };
    const q = req.url.indexOf('?');
    const headers: Record<string, string> = { ...baseHeaders, 'anthropic-version': headerOf(req, 'anthropic-version') ?? ANTHROPIC_VERSION };
    if (beta) headers['anthropic-beta'] = beta;
    return { native, url: q >= 0 ? `${url}${req.url.slice(q)}` : url, headers, payload: nativeBody(native, body, target, beta) };
  }
  const chat = toChatRequest(body, target);
  const prepared = target.adapter.prepare(chat, target.upstreamModel, stream, target.entry?.maxOutputTokens ?? null);
  return { native, url, headers: baseHeaders, payload: prepared.payload };
}

// ---------------------------------------------------------------------------------------------
// POST /v1/messages
// ---------------------------------------------------------------------------------------------

function handleMessages(deps: GatewayDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  return runCall(deps, reply, authorizationOf(req), 'messages', async (caller, rec) => {
    const validated = validate(req.body);
    const models = requestModels(validated);
    rec.model = validated.model;
    rec.ask = { promptChars: JSON.stringify(validated.messages).length + JSON.stringify(validated.system ?? '').length + JSON.stringify(validated.tools ?? '').length, maxOutputTokens: outputAsked(validated.max_tokens) };
    rec.streamed = validated.stream === true;
    if (rec.retain) rec.requestBody = retained(validated);
    // `models` is the gateway's: the upstream never sees it.
    const body = withoutModels(validated);
    const route = { model: body.model, models, projectFallbacks: true, session: sessionOf(req.headers['x-session-id'], body), noFallback: noFallback(req.headers['x-gateway-no-fallback']) };
    await runAttempts(deps, caller, reply, rec, route, {
      prepare(target) {
        if (rec.streamed && target.entry && !target.entry.streaming) throw badRequest(`${target.model} does not support streaming`);
        // Translation refusals come before admission: a refused request costs no rate limit.
        return exchangeFor(req, body, target, rec.streamed);
      },
      send: (target, exchange) => (rec.streamed ? streamMessage(deps, reply, body, target, rec, exchange) : plainMessage(deps, caller, req, reply, body, target, rec, exchange)),
    });
  });
}

/** Differs from chat completions' key for the same model and body; the Anthropic headers count. */
function messagesCacheKey(req: FastifyRequest, body: MessagesRequest, target: Target): Buffer {
  return cacheKey(`messages\n${target.provider}`, target.upstreamModel, {
    ...body,
    '\u0000anthropic-version': headerOf(req, 'anthropic-version') ?? null,
    '\u0000anthropic-beta': headerOf(req, 'anthropic-beta') ?? null,
  } as unknown as Parameters<typeof cacheKey>[2]);
}

function parseJson(text: string, label: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw upstreamFailed(`${label} sent a response that is not JSON`, 'upstream_malformed');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw upstreamFailed(`${label} sent a response that is not a JSON object`, 'upstream_malformed');
  return parsed as Record<string, unknown>;
}

async function plainMessage(deps: GatewayDeps, caller: CallerContext, req: FastifyRequest, reply: FastifyReply, body: MessagesRequest, target: Target, rec: CallRecord, ex: Exchange) {
  const project = caller.project;
  const key = project.cachingEnabled ? messagesCacheKey(req, body, target) : null;
  if (key) {
    const hit = await readCache(deps.runtime.query, project.id, key);
    if (hit) {
      reply.header('x-gateway-cache', 'hit').type('application/json').send(JSON.stringify(hit.response));
      rec.finish({ status: 200, usage: hit.usage, paidBy: 'cache', cached: true, responseBody: hit.response });
      return;
    }
  }
  const call = deps.upstream.postJsonWhole(ex.url, signed(target, ex.url, ex.headers, ex.payload), ex.payload, deps.config.upstreamTimeoutMs, target.label);
  const client = onClientGone(reply, () => call.abort());
  try {
    const res = await call.response;
    const text = await res.text();
    if (res.status !== 200) throw upstreamError(target, res.status, res.headers, text);
    let message: Record<string, unknown>;
    let usage: TokenUsage;
    let bytes: string;
    if (ex.native) {
      // Claude's answer goes to the client as it came; only its usage is read.
      message = parseJson(text, target.label);
      if (!Array.isArray(message.content)) throw upstreamFailed(`${target.label} sent a response without content`, 'upstream_malformed');
      usage = usageOf((message.usage ?? {}) as AnthropicUsage);
      bytes = text;
    } else {
      const parsed = target.adapter.parseResponse(text);
      // No usage reported: estimated from the prompt and the answer's content.
      usage = parsed.usage ?? { inputTokens: estimateInputTokens(body), outputTokens: estimateTokens(answerChars(parsed.completion)), cachedTokens: 0 };
      message = toAnthropicMessage(parsed.completion, usage, body.model, target.label);
      bytes = JSON.stringify(message);
    }
    if (key) {
      await writeCache(deps.runtime.query, { projectId: project.id, key, provider: target.provider, model: target.model, ttlSeconds: project.cacheTtlSeconds, response: message, usage });
    }
    if (client.gone()) throw new GatewayError(499, 'client closed the connection', 'server_error', 'canceled');
    const requestId = res.headers['request-id'];
    if (ex.native && typeof requestId === 'string') reply.header('request-id', requestId);
    reply.header('x-gateway-cache', key ? 'miss' : 'off').type('application/json').send(bytes);
    rec.finish({ status: 200, usage, paidBy: target.paidBy, responseBody: message });
  } catch (err) {
    if (client.gone()) {
      rec.finish({ status: 499, canceled: true, error: 'client closed the connection before the answer' });
      return;
    }
    throw err;
  } finally {
    client.off();
  }
}

/** Follows a Claude event stream passing through: usage, delivered output, the end, an error event. */
class NativeStreamMeter {
  usage: AnthropicUsage = {};
  started = false;
  finished = false;
  chars = 0;
  ttftMs: number | null = null;
  text = '';
  stopReason: string | null = null;
  error: string | null = null;

  constructor(private readonly t0: number, private readonly keepText: boolean) {}

  event(e: Record<string, unknown>): void {
    switch (e.type) {
      case 'message_start':
        this.started = true;
        this.usage = { ...((e.message as { usage?: AnthropicUsage } | undefined)?.usage ?? {}) };
        break;
      case 'content_block_start': {
        const block = (e.content_block ?? {}) as { type?: unknown; name?: unknown; text?: unknown };
        const n = (typeof block.name === 'string' ? block.name.length : 0) + (typeof block.text === 'string' ? block.text.length : 0);
        this.delivered(n, typeof block.text === 'string' ? block.text : '');
        break;
      }
      case 'content_block_delta': {
        const d = (e.delta ?? {}) as { text?: unknown; partial_json?: unknown; thinking?: unknown };
        const piece = [d.text, d.partial_json, d.thinking].find((v) => typeof v === 'string') as string | undefined;
        this.delivered(piece?.length ?? 0, typeof d.text === 'string' ? d.text : '');
        break;
      }
      case 'message_delta': {
        const delta = (e.delta ?? {}) as { stop_reason?: unknown };
        if (typeof delta.stop_reason === 'string') this.stopReason = delta.stop_reason;
        // Cumulative counts: what message_delta restates replaces message_start's.
        const u = (e.usage ?? {}) as Record<string, unknown>;
        this.usage = { ...this.usage, ...Object.fromEntries(Object.entries(u).filter(([, v]) => v != null)) };
        break;
      }
      case 'message_stop':
        this.finished = true;
        break;
      case 'error': {
        const err = (e.error ?? {}) as { type?: unknown; message?: unknown };
        this.error = `upstream error event: ${String(err.type ?? 'error')}: ${String(err.message ?? '')}`.slice(0, 500);
        break;
      }
    }
  }

  private delivered(n: number, text: string) {
    if (n > 0 && this.ttftMs === null) this.ttftMs = performance.now() - this.t0;
    this.chars += n;
    if (this.keepText && this.text.length < RETAINED_BODY_MAX) this.text += text;
  }
}

async function streamMessage(deps: GatewayDeps, reply: FastifyReply, body: MessagesRequest, target: Target, rec: CallRecord, ex: Exchange) {
  const opened = await openUpstreamStream(deps, reply, target, { url: ex.url, headers: ex.headers, payload: ex.payload }, rec, {
    // Anthropic's request id, for support tickets, when the answer is Anthropic's own.
    extraHeaders: (upstream): Record<string, string> => {
      const id = upstream['request-id'];
      return ex.native === 'anthropic' && typeof id === 'string' ? { 'request-id': id } : {};
    },
  });
  if (!opened) return;
  const { res, client } = opened;
  const raw = reply.raw;
  const meter = new NativeStreamMeter(rec.started, rec.retain);
  const writer = ex.native ? null : new MessagesStreamWriter(newMessageId(), body.model, rec.retain ? RETAINED_BODY_MAX : 0);
  let usage: TokenUsage | null = null;
  const chars = () => (writer ? writer.chars : meter.chars);
  const ttft = () => (writer ? writerTtft : meter.ttftMs);
  let writerTtft: number | null = null;
  const responseBody = () => (writer ? { content: writer.text, stop_reason: writer.stopReason } : { content: meter.text, stop_reason: meter.stopReason });
  const promptTokens = () => estimateInputTokens(body);
  /** What was delivered: the provider's counts where they came, else estimates. */
  const deliveredUsage = (): TokenUsage => {
    if (usage) return usage;
    if (meter.started) {
      const u = usageOf(meter.usage);
      return { ...u, outputTokens: Math.max(u.outputTokens, estimateTokens(chars())) };
    }
    return { inputTokens: promptTokens(), outputTokens: estimateTokens(chars()), cachedTokens: 0 };
  };
  try {
    if (ex.native === 'anthropic') {
      // The bytes go to the client as they come; a parser beside them reads usage and the end.
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const read = (events: { data: string }[]) => {
        for (const e of events) {
          try {
            meter.event(JSON.parse(e.data) as Record<string, unknown>);
          } catch {
            throw upstreamFailed(`${target.label} sent a malformed stream event`, 'upstream_malformed');
          }
        }
      };
      for await (const bytes of res.body()) {
        if (client.gone()) break;
        raw.write(bytes);
        read(parser.push(decoder.decode(bytes, { stream: true })));
        if (meter.finished || meter.error) break;
      }
      if (!client.gone() && !meter.finished && !meter.error) read(parser.end());
    } else if (ex.native === 'bedrock') {
      for await (const event of bedrockAnthropicEvents(res.body())) {
        if (client.gone()) break;
        raw.write(sseEvent(String(event.type ?? 'unknown'), event));
        meter.event(event);
        if (meter.finished || meter.error) break;
      }
    } else {
      raw.write(writer!.start());
      for await (const chunk of target.adapter.streamChunks(res.body()) as AsyncGenerator<ChatChunk>) {
        if (client.gone()) break;
        if (chunk.usage) usage = openAiUsage(chunk.usage) ?? usage;
        const before = writer!.chars;
        const out = writer!.push(chunk);
        if (writer!.chars > before && writerTtft === null) writerTtft = performance.now() - rec.started;
        if (out) raw.write(out);
      }
      if (!client.gone()) {
        usage ??= { inputTokens: promptTokens(), outputTokens: estimateTokens(writer!.chars), cachedTokens: 0 };
        meter.finished = true;
        raw.write(writer!.end(usage));
      }
    }
    if (client.gone()) throw new GatewayError(499, 'canceled', 'server_error', 'canceled');
    if (meter.error) {
      // The upstream's error event already reached the client as it was.
      raw.end();
      res.abort();
      rec.finish({ status: 502, error: meter.error, ttftMs: ttft(), responseBody: responseBody(), ...(chars() > 0 ? { usage: deliveredUsage(), paidBy: target.paidBy } : {}) });
      return;
    }
    if (!meter.finished) throw upstreamFailed(`${target.label} ended the stream early (no message_stop)`, 'upstream_truncated');
    raw.end();
    if (ex.native) usage = usageOf(meter.usage);
    rec.finish({ status: 200, usage: deliveredUsage(), paidBy: target.paidBy, ttftMs: ttft(), responseBody: responseBody() });
  } catch (err) {
    if (client.gone()) {
      // Charged for what reached the client before it went away.
      rec.finish({ status: 200, usage: deliveredUsage(), paidBy: target.paidBy, canceled: true, ttftMs: ttft(), error: 'client closed the stream', responseBody: responseBody() });
      return;
    }
    const error = err instanceof GatewayError ? err : new GatewayError(502, 'the stream failed', 'upstream_error', 'upstream_error');
    if (!(err instanceof GatewayError)) deps.log.error({ err }, 'messages stream failed');
    // Headers are out: the error travels as Anthropic's `error` event.
    raw.end(sseEvent('error', anthropicErrorBody(error.status, error.message)));
    res.abort();
    rec.finish({ status: error.status, error: error.message, ttftMs: ttft(), responseBody: responseBody(), ...(chars() > 0 ? { usage: deliveredUsage(), paidBy: target.paidBy } : {}) });
  } finally {
    client.off();
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/messages/count_tokens (not metered: no request log row, no charge)
// ---------------------------------------------------------------------------------------------

async function handleCountTokens(deps: GatewayDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const caller = await deps.runtime.authenticate(authorizationOf(req));
  const body = validate(req.body);
  // Routing only: this record is never finished, so nothing is logged or charged.
  const rec = new CallRecord(deps, caller, performance.now(), new Date(), 'messages');
  const target = await targetFor(deps, caller, body.model, rec);
  if (nativeOf(target) !== 'anthropic') {
    // No counting endpoint for this provider (Bedrock's Claude included): an estimate.
    reply.header('x-gateway-estimate', 'true').send({ input_tokens: estimateInputTokens(body) });
    return;
  }
  // Anthropic counts for free, but each forwarded count is one request of the key's rate limit.
  await deps.runtime.checkRateLimit(caller.key);
  const base = target.url;
  const q = req.url.indexOf('?');
  const url = `${base}/count_tokens${q >= 0 ? req.url.slice(q) : ''}`;
  const headers: Record<string, string> = { ...target.headers, 'anthropic-version': headerOf(req, 'anthropic-version') ?? ANTHROPIC_VERSION };
  const beta = headerOf(req, 'anthropic-beta');
  if (beta) headers['anthropic-beta'] = beta;
  const payload = JSON.stringify({ ...withoutModels(body), model: target.upstreamModel });
  const call = deps.upstream.postJsonWhole(url, signed(target, url, headers, payload), payload, deps.config.upstreamTimeoutMs, target.label, 1024 * 1024);
  const client = onClientGone(reply, () => call.abort());
  try {
    const res = await call.response;
    const text = await res.text();
    if (res.status !== 200) throw upstreamError(target, res.status, res.headers, text);
    parseJson(text, target.label);
    reply.type('application/json').send(text);
  } finally {
    client.off();
  }
}
