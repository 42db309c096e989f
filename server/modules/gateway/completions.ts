/**
 * POST /v1/chat/completions: authenticate the project key, route the model, decide who pays,
 * answer (from the cache, or upstream, streaming or not), and hand one usage record per call to
 * the meter after the response. Errors after authentication are logged too (and never charged).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenUsage } from '../../../shared/models.js';
import { cacheKey, readCache, writeCache } from './cache.js';
import { badRequest, fromUpstreamStatus, GatewayError } from './errors.js';
import type { CallerContext } from './runtime.js';
import type { Target } from './targets.js';
import { openAiUsage, PARTIAL_USAGE, type ChatChunk, type ChatRequest } from './upstream/types.js';
import { conversationBody, estimateTokens, outputAsked, onClientGone, openUpstreamStream, RETAINED_BODY_MAX, retained, runAttempts, runCall, signed, type CallRecord, type CompletionDeps } from './call.js';
import { noFallback, requestModels, sessionOf, withoutModels } from './routing.js';

export { RoutedTargets, type CompletionDeps } from './call.js';

function validate(body: unknown): ChatRequest {
  const b = conversationBody(body, '"openai/gpt-4o-mini"');
  if (b.stream_options != null && typeof b.stream_options !== 'object') throw badRequest('stream_options must be an object');
  return b as ChatRequest;
}

export function handleChatCompletion(deps: CompletionDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  return runCall(deps, reply, req.headers.authorization, 'chat.completions', async (caller, rec) => {
    const validated = validate(req.body);
    const models = requestModels(validated);
    rec.model = validated.model;
    rec.ask = { promptChars: JSON.stringify(validated.messages).length + JSON.stringify(validated.tools ?? '').length, maxOutputTokens: outputAsked(validated.max_completion_tokens ?? validated.max_tokens) };
    rec.streamed = validated.stream === true;
    if (rec.retain) rec.requestBody = retained(validated);
    // `models` is the gateway's: the upstream never sees it.
    const body = withoutModels(validated);
    const route = { model: body.model, models, projectFallbacks: true, session: sessionOf(req.headers['x-session-id'], body), noFallback: noFallback(req.headers['x-gateway-no-fallback']) };
    await runAttempts(deps, caller, reply, rec, route, {
      prepare(target) {
        if (rec.streamed && target.entry && !target.entry.streaming) throw badRequest(`${target.model} does not support streaming`);
      },
      send: (target) => (rec.streamed ? streamCompletion(deps, reply, body, target, rec) : plainCompletion(deps, caller, reply, body, target, rec)),
    });
  });
}

async function plainCompletion(deps: CompletionDeps, caller: CallerContext, reply: FastifyReply, body: ChatRequest, target: Target, rec: CallRecord) {
  const project = caller.project;
  const key = project.cachingEnabled ? cacheKey(target.provider, target.upstreamModel, body) : null;
  if (key) {
    const hit = await readCache(deps.runtime.query, project.id, key);
    if (hit) {
      reply.header('x-gateway-cache', 'hit').type('application/json').send(withProvider(JSON.stringify(hit.response), target.provider));
      rec.finish({ status: 200, usage: hit.usage, paidBy: 'cache', cached: true, responseBody: hit.response });
      return;
    }
  }
  const prepared = target.adapter.prepare(body, target.upstreamModel, false, target.entry?.maxOutputTokens ?? null);
  const call = deps.upstream.postJsonWhole(target.url, signed(target, target.url, target.headers, prepared.payload), prepared.payload, deps.config.upstreamTimeoutMs, target.label);
  const client = onClientGone(reply, () => call.abort());
  try {
    const res = await call.response;
    const text = await res.text();
    if (res.status !== 200) throw fromUpstreamStatus(target.label, res.status, text, res.headers);
    const { completion, usage, passThrough } = target.adapter.parseResponse(text);
    // No usage reported: estimated from the answer's content (not its JSON envelope) and the prompt.
    const finalUsage = usage ?? { inputTokens: estimateTokens(JSON.stringify(body.messages).length), outputTokens: estimateTokens(answerChars(completion)), cachedTokens: 0 };
    if (key) {
      await writeCache(deps.runtime.query, { projectId: project.id, key, provider: target.provider, model: target.model, ttlSeconds: project.cacheTtlSeconds, response: completion, usage: finalUsage });
    }
    if (client.gone()) throw new GatewayError(499, 'client closed the connection', 'server_error', 'canceled');
    reply.header('x-gateway-cache', key ? 'miss' : 'off').type('application/json').send(withProvider(passThrough ? text : JSON.stringify(completion), target.provider));
    rec.finish({ status: 200, usage: finalUsage, paidBy: target.paidBy, responseBody: completion });
  } catch (err) {
    if (client.gone()) {
      // Nothing was delivered: logged as canceled, not charged.
      rec.finish({ status: 499, canceled: true, error: 'client closed the connection before the answer' });
      return;
    }
    throw err;
  } finally {
    client.off();
  }
}

/**
 * The completion's JSON with the provider that answered as its first field (`"provider": "openai"`,
 * as OpenRouter does); the upstream's bytes otherwise unchanged.
 */
export function withProvider(json: string, provider: string): string {
  let i = 0;
  while (i < json.length && json.charCodeAt(i) <= 32) i++;
  if (json[i] !== '{') return json;
  let j = i + 1;
  while (j < json.length && json.charCodeAt(j) <= 32) j++;
  return `{"provider":${JSON.stringify(provider)}${json[j] === '}' ? '' : ','}${json.slice(i + 1)}`;
}

/** The characters of a chat.completion's answer: message text, refusals, tool calls' names and arguments. */
export function answerChars(completion: Record<string, unknown>): number {
  const text = (v: unknown): number => {
    if (typeof v === 'string') return v.length;
    if (Array.isArray(v)) return v.reduce((n: number, part: unknown) => n + (part && typeof part === 'object' ? text((part as { text?: unknown }).text) : 0), 0);
    return 0;
  };
  const call = (c: unknown): number => {
    const f = (c && typeof c === 'object' ? ((c as { function?: unknown }).function ?? c) : null) as { name?: unknown; arguments?: unknown } | null;
    return f ? text(f.name) + text(f.arguments) : 0;
  };
  let n = 0;
  for (const choice of Array.isArray(completion.choices) ? (completion.choices as unknown[]) : []) {
    const m = (choice && typeof choice === 'object' ? (choice as { message?: unknown }).message : null) as Record<string, unknown> | null | undefined;
    if (!m || typeof m !== 'object') continue;
    n += text(m.content) + text(m.refusal) + text(m.reasoning_content);
    if (Array.isArray(m.tool_calls)) for (const c of m.tool_calls) n += call(c);
    if (m.function_call) n += call(m.function_call);
  }
  return n;
}

function deliveredChars(chunk: ChatChunk): number {
  let n = 0;
  for (const c of chunk.choices ?? []) {
    n += c.delta?.content?.length ?? 0;
    for (const t of c.delta?.tool_calls ?? []) n += t.function?.arguments?.length ?? 0;
  }
  return n;
}

/** What an upstream chunk does on the client's stream: nothing, its own bytes, or serialized anew (changed). */
const SKIP = 0;
const AS_IS = 1;
const CHANGED = 2;
const DONE_EVENT = Buffer.from('data: [DONE]\n\n');
const eventOf = (chunk: ChatChunk) => `data: ${JSON.stringify(chunk)}\n\n`;

async function streamCompletion(deps: CompletionDeps, reply: FastifyReply, body: ChatRequest, target: Target, rec: CallRecord) {
  const started = rec.started;
  const includeUsage = body.stream_options?.include_usage === true;
  const prepared = target.adapter.prepare(body, target.upstreamModel, true, target.entry?.maxOutputTokens ?? null);
  let usage: TokenUsage | null = null;
  let partial: TokenUsage | null = null;
  let chars = 0;
  let ttftMs: number | null = null;
  let content = '';
  let finishReason: string | null = null;
  const promptChars = () => JSON.stringify(body.messages).length;
  const canceledUsage = (): TokenUsage => ({
    inputTokens: usage?.inputTokens ?? partial?.inputTokens ?? estimateTokens(promptChars()),
    outputTokens: usage?.outputTokens ?? Math.max(partial?.outputTokens ?? 0, estimateTokens(chars)),
    cachedTokens: usage?.cachedTokens ?? partial?.cachedTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteTokens ?? partial?.cacheWriteTokens ?? 0,
  });
  /** Meters one upstream chunk and says what goes to the client: usage only when the client asked for it. */
  const take = (chunk: ChatChunk): typeof SKIP | typeof AS_IS | typeof CHANGED => {
    const early = (chunk as Record<symbol, unknown>)[PARTIAL_USAGE] as TokenUsage | undefined;
    if (early) partial = early;
    if (chunk.usage) usage = openAiUsage(chunk.usage) ?? usage;
    const hasChoices = Array.isArray(chunk.choices) && chunk.choices.length > 0;
    let how: typeof AS_IS | typeof CHANGED = AS_IS;
    if (!includeUsage && 'usage' in chunk) {
      if (!hasChoices && chunk.usage) return SKIP;
      delete chunk.usage;
      how = CHANGED;
    }
    if (hasChoices) {
      const n = deliveredChars(chunk);
      if (n > 0 && ttftMs === null) ttftMs = performance.now() - started;
      chars += n;
      if (rec.retain && content.length < RETAINED_BODY_MAX) content += chunk.choices!.map((c) => c.delta?.content ?? '').join('');
      finishReason = chunk.choices!.find((c) => c.finish_reason)?.finish_reason ?? finishReason;
    }
    return how;
  };
  const opened = await openUpstreamStream(deps, reply, target, { url: target.streamUrl ?? target.url, headers: target.streamHeaders ?? target.headers, payload: prepared.payload }, rec);
  if (!opened) return;
  const { res, client } = opened;
  const raw = reply.raw;
  // The events of the current upstream read, written together (one socket write per read, as they came).
  const out: Buffer[] = [];
  const pending = () => {
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out);
    out.length = 0;
    return bytes;
  };
  try {
    const reader = target.adapter.streamReader?.();
    if (reader) {
      // The upstream speaks OpenAI's stream: its events go through as bytes, re-serialized only when changed.
      const emit = (chunk: ChatChunk, bytes: Buffer | null) => {
        const how = take(chunk);
        if (how !== SKIP) out.push(how === AS_IS && bytes ? bytes : Buffer.from(eventOf(chunk)));
      };
      for await (const bytes of res.body()) {
        if (client.gone()) break;
        reader.push(bytes, emit);
        // The last read goes out with the end of the stream.
        if (reader.done) break;
        if (out.length > 0) raw.write(pending());
      }
      if (!reader.done && !client.gone()) reader.end(emit);
    } else {
      for await (const chunk of target.adapter.streamChunks(res.body())) {
        if (client.gone()) break;
        if (take(chunk) !== SKIP) raw.write(eventOf(chunk));
      }
    }
    if (client.gone()) throw new GatewayError(499, 'canceled', 'server_error', 'canceled');
    out.push(DONE_EVENT);
    raw.end(pending());
    const final = usage ?? { inputTokens: estimateTokens(promptChars()), outputTokens: estimateTokens(chars), cachedTokens: 0 };
    rec.finish({ status: 200, usage: final, paidBy: target.paidBy, ttftMs, responseBody: { content, finish_reason: finishReason } });
  } catch (err) {
    if (client.gone()) {
      // Charged for what reached the client before it went away.
      rec.finish({ status: 200, usage: canceledUsage(), paidBy: target.paidBy, canceled: true, ttftMs, error: 'client closed the stream', responseBody: { content, finish_reason: null } });
      return;
    }
    const error = err instanceof GatewayError ? err : new GatewayError(502, 'the stream failed', 'upstream_error', 'upstream_error');
    if (!(err instanceof GatewayError)) deps.log.error({ err }, 'stream failed');
    // What the upstream sent before the failure goes first.
    if (out.length > 0) raw.write(pending());
    // Headers are out: the error travels as a stream event, the way OpenAI reports mid-stream errors.
    raw.end(`data: ${JSON.stringify(error.toJSON())}\n\n`);
    res.abort();
    // What reached the client before the failure is paid for, as when the client goes away.
    const delivered = chars > 0;
    rec.finish({ status: error.status, error: error.message, ttftMs, responseBody: { content, finish_reason: null }, ...(delivered ? { usage: canceledUsage(), paidBy: target.paidBy } : {}) });
  } finally {
    client.off();
  }
}
