/**
 * POST /v1/responses (OpenAI's Responses API, streaming and not) and GET /v1/responses/{id}.
 * OpenAI and Azure OpenAI models pass through to the upstream's own Responses endpoint (the body
 * unchanged but for the model name, the answer's bytes unchanged, usage read on the way); every
 * other provider is translated to chat completions and back (upstream/responses-chat.ts). Responses
 * of translated models are stored while the organization retains bodies, for previous_response_id
 * and GET. Metered like chat completions: one record per call, exact usage, streams charged for
 * what was delivered, canceled calls logged as canceled.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenUsage } from '../../../shared/models.js';
import { cacheKey, readCache, writeCache } from './cache.js';
import { badRequest, fromUpstreamStatus, GatewayError, upstreamFailed } from './errors.js';
import type { CallerContext } from './runtime.js';
import { SseParser } from './sse.js';
import type { Target } from './targets.js';
import { openAiUsage, PARTIAL_USAGE, type ChatRequest } from './upstream/types.js';
import { chatToResponse, newId, ResponsesStreamTranslator, responsesToChat, sseOf, usageFromResponses, type ResponseEcho, type ResponseItem } from './upstream/responses-chat.js';
import { answerChars } from './completions.js';
import { authorizationOf, estimateTokens, outputAsked, onClientGone, RETAINED_BODY_MAX, retained, openUpstreamStream, runAttempts, runCall, signed, type CallRecord, type GatewayDeps } from './call.js';
import { noFallback, requestModels, sessionOf, withoutModels } from './routing.js';

type Obj = Record<string, unknown>;

export function registerResponsesRoutes(scope: FastifyInstance, deps: GatewayDeps): void {
  scope.post('/responses', { bodyLimit: deps.config.maxBodyBytes }, (req, reply) => handleResponses(deps, req, reply));
  scope.get('/responses/:id', (req, reply) => getStoredResponse(deps, req, reply));
}

function validate(body: unknown): Obj & { model: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const b = body as Obj;
  if (typeof b.model !== 'string' || b.model.trim() === '') throw badRequest('model is required (e.g. "openai/gpt-4o-mini")', 'model_required');
  if (b.model.length > 200) throw badRequest('model must be at most 200 characters');
  if (b.input !== undefined && b.input !== null && typeof b.input !== 'string' && !Array.isArray(b.input)) throw badRequest('input must be a string or an array of input items');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw badRequest('stream must be a boolean');
  if (b.previous_response_id !== undefined && b.previous_response_id !== null && (typeof b.previous_response_id !== 'string' || b.previous_response_id.length > 200)) {
    throw badRequest('previous_response_id must be a response id');
  }
  return b as Obj & { model: string };
}

/** Where an OpenAI-served target answers the Responses API, and under which model name; null for providers the gateway translates. */
export function nativeResponses(target: Target): { url: string; model: string } | null {
  if (target.provider === 'openai') {
    const m = /^(.*)\/chat\/completions$/.exec(target.url);
    return m ? { url: `${m[1]}/responses`, model: target.upstreamModel } : null;
  }
  if (target.provider === 'azure') {
    // Azure serves the Responses API on its v1 surface: no deployment in the path, the deployment is the body's model.
    const m = /^(.*)\/openai\/deployments\/([^/]+)\/chat\/completions\?/.exec(target.url);
    return m ? { url: `${m[1]}/openai/v1/responses?api-version=preview`, model: decodeURIComponent(m[2]!) } : null;
  }
  return null;
}

const jsonb = (value: unknown) => JSON.stringify(value).replace(/\\u0000/g, '\\ufffd');

type ResponsesAttempt =
  | { native: { url: string; model: string }; payload: string }
  | { native: null; chat: ChatRequest; items: ResponseItem[]; echo: ResponseEcho; keep: ((response: Obj) => Promise<void>) | null };

export function handleResponses(deps: GatewayDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  return runCall(deps, reply, authorizationOf(req), 'responses', async (caller, rec) => {
    const validated = validate(req.body);
    const models = requestModels(validated);
    rec.model = validated.model;
    rec.ask = { promptChars: promptChars(validated) + JSON.stringify(validated.tools ?? '').length, maxOutputTokens: outputAsked(validated.max_output_tokens) };
    rec.streamed = validated.stream === true;
    if (rec.retain) rec.requestBody = retained(validated);
    // `models` is the gateway's: the upstream never sees it.
    const body = withoutModels(validated);
    const route = { model: body.model, models, projectFallbacks: true, session: sessionOf(req.headers['x-session-id'], body), noFallback: noFallback(req.headers['x-gateway-no-fallback']) };
    await runAttempts<ResponsesAttempt>(deps, caller, reply, rec, route, {
      async prepare(target) {
        if (rec.streamed && target.entry && !target.entry.streaming) throw badRequest(`${target.model} does not support streaming`);
        const native = nativeResponses(target);
        if (native) return { native, payload: JSON.stringify({ ...body, model: native.model }) };
        const history = await historyOf(deps, caller, body, target, rec);
        const translated = responsesToChat(await withReferencedItems(deps, caller, body, target, rec), target.model, history);
        const store = body.store !== false && rec.retain;
        const echo: ResponseEcho = { id: newId('resp'), createdAt: Math.floor(Date.now() / 1000), model: body.model, body, store };
        const keep = store ? (response: Obj) => storeResponse(deps, caller, target, translated.items, response) : null;
        return { native: null, chat: translated.chat, items: translated.items, echo, keep };
      },
      send(target, a) {
        if (a.native) return rec.streamed ? streamNative(deps, reply, body, target, a.native.url, a.payload, rec) : plainNative(deps, caller, reply, body, target, a.native.url, a.payload, rec);
        return rec.streamed ? streamTranslated(deps, reply, body, a.chat, target, a.echo, a.keep, rec) : plainTranslated(deps, caller, reply, body, a.chat, target, a.echo, a.keep, rec);
      },
    });
  });
}

/** The stored conversation previous_response_id names (its input items and its output), for a translated model. */
async function historyOf(deps: GatewayDeps, caller: CallerContext, body: Obj, target: Target, rec: CallRecord): Promise<ResponseItem[]> {
  const prev = body.previous_response_id;
  if (typeof prev !== 'string') return [];
  if (!rec.retain) {
    throw badRequest(
      `previous_response_id needs the earlier response stored, and for ${target.model} (translated to chat completions) the gateway stores responses only while the organization's retention level is "retain" (it is "${caller.org.retentionLevel}"); send the whole conversation as input instead`,
      'previous_response_unavailable',
    );
  }
  const rows = await deps.runtime.query<{ items: unknown; response: Obj }[]>('select items, response from stored_response where id = ? and project_id = ?', [prev, caller.project.id]);
  const row = rows[0];
  if (!row) throw badRequest(`previous response "${prev}" was not found in this project (the gateway stores responses of translated models while retention is "retain")`, 'previous_response_not_found');
  const items = Array.isArray(row.items) ? (row.items as ResponseItem[]) : [];
  const output = Array.isArray(row.response.output) ? (row.response.output as ResponseItem[]) : [];
  return [...items, ...output];
}

const MAX_REFERENCES = 200;

/**
 * The body with its item_reference inputs replaced by the items they name, from this project's
 * stored responses (clients that assume OpenAI keeps every response, like the AI SDK's default
 * `store: true`, send earlier output items by id).
 */
async function withReferencedItems(deps: GatewayDeps, caller: CallerContext, body: Obj, target: Target, rec: CallRecord): Promise<Obj> {
  if (!Array.isArray(body.input)) return body;
  const refs = (body.input as unknown[]).flatMap((item, i) => (item && typeof item === 'object' && (item as Obj).type === 'item_reference' ? [i] : []));
  if (refs.length === 0) return body;
  if (!rec.retain) {
    throw badRequest(
      `input[${refs[0]}] (item_reference) names an item of an earlier response, and for ${target.model} (translated to chat completions) the gateway stores responses only while the organization's retention level is "retain" (it is "${caller.org.retentionLevel}"); send the items themselves (with the AI SDK: providerOptions.openai.store = false)`,
      'item_reference_unavailable',
    );
  }
  if (refs.length > MAX_REFERENCES) throw badRequest(`at most ${MAX_REFERENCES} item_reference inputs per request`);
  const input = [...(body.input as Obj[])];
  for (const i of refs) {
    const id = input[i]!.id;
    if (typeof id !== 'string') throw badRequest(`input[${i}].id is required (item_reference)`);
    const rows = await deps.runtime.query<{ item: Obj }[]>(
      `select o.item from stored_response s, jsonb_array_elements(s.response->'output') as o(item)
        where s.project_id = ? and s.response->'output' @> jsonb_build_array(jsonb_build_object('id', ?::text)) and o.item->>'id' = ? limit 1`,
      [caller.project.id, id, id],
    );
    if (!rows[0]) throw badRequest(`input[${i}] (item_reference) names item "${id}", which is not in a stored response of this project`, 'item_not_found');
    input[i] = rows[0].item;
  }
  return { ...body, input };
}

async function storeResponse(deps: GatewayDeps, caller: CallerContext, target: Target, items: ResponseItem[], response: Obj): Promise<void> {
  await deps.runtime.query(
    'insert into stored_response (id, org_id, project_id, provider, model, items, response, created_at) values (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, now())',
    [response.id, caller.org.id, caller.project.id, target.provider.slice(0, 40), target.model.slice(0, 200), jsonb(items), jsonb(response)],
  );
}

/** GET /v1/responses/{id}: a response the gateway stored for this project (translated models, retention "retain"). */
async function getStoredResponse(deps: GatewayDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const caller = await deps.runtime.authenticate(authorizationOf(req));
  const id = (req.params as { id: string }).id;
  const rows = caller.org.retentionLevel === 'retain' ? await deps.runtime.query<{ response: Obj }[]>('select response from stored_response where id = ? and project_id = ?', [id, caller.project.id]) : [];
  if (!rows[0]) {
    throw new GatewayError(404, `no stored response "${id}" in this project: the gateway serves the responses it stored (models it translates, while the organization's retention level is "retain"); responses of OpenAI models are kept by OpenAI`, 'invalid_request_error', 'not_found');
  }
  reply.type('application/json').send(JSON.stringify(rows[0].response));
}

const promptChars = (body: Obj) => JSON.stringify(body.input ?? '').length + (typeof body.instructions === 'string' ? body.instructions.length : 0);

/** Characters of a Response's output (text, refusals, function names and arguments), for an estimate. */
function outputChars(response: Obj): number {
  let n = 0;
  for (const item of Array.isArray(response.output) ? (response.output as Obj[]) : []) {
    if (typeof item.arguments === 'string') n += item.arguments.length + String(item.name ?? '').length;
    for (const part of Array.isArray(item.content) ? (item.content as Obj[]) : []) n += String(part.text ?? part.refusal ?? '').length;
  }
  return n;
}

function cacheKeyOf(caller: CallerContext, target: Target, body: Obj): Buffer | null {
  // Keyed apart from chat completions' entries: the same provider and model, another API.
  return caller.project.cachingEnabled ? cacheKey(`responses\n${target.provider}`, target.upstreamModel, body as ChatRequest) : null;
}

async function fromCache(deps: GatewayDeps, caller: CallerContext, reply: FastifyReply, key: Buffer | null, rec: CallRecord): Promise<boolean> {
  if (!key) return false;
  const hit = await readCache(deps.runtime.query, caller.project.id, key);
  if (!hit) return false;
  reply.header('x-gateway-cache', 'hit').type('application/json').send(JSON.stringify(hit.response));
  rec.finish({ status: 200, usage: hit.usage, paidBy: 'cache', cached: true, responseBody: hit.response });
  return true;
}

/** One non-streaming upstream call: the answer's text (200 only), canceled calls logged and not charged. */
async function postPlain(
  deps: GatewayDeps,
  reply: FastifyReply,
  target: Target,
  url: string,
  headers: Record<string, string>,
  payload: string,
  rec: CallRecord,
  answer: (text: string, gone: () => boolean) => Promise<void>,
): Promise<void> {
  const call = deps.upstream.postJsonWhole(url, signed(target, url, headers, payload), payload, deps.config.upstreamTimeoutMs, target.label);
  const client = onClientGone(reply, () => call.abort());
  try {
    const res = await call.response;
    const text = await res.text();
    if (res.status !== 200) throw fromUpstreamStatus(target.label, res.status, text, res.headers);
    await answer(text, client.gone);
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

const canceledError = () => new GatewayError(499, 'client closed the connection', 'server_error', 'canceled');

async function plainNative(deps: GatewayDeps, caller: CallerContext, reply: FastifyReply, body: Obj, target: Target, url: string, payload: string, rec: CallRecord) {
  const key = cacheKeyOf(caller, target, body);
  if (await fromCache(deps, caller, reply, key, rec)) return;
  await postPlain(deps, reply, target, url, target.headers, payload, rec, async (text, gone) => {
    let response: Obj;
    try {
      response = JSON.parse(text) as Obj;
    } catch {
      throw upstreamFailed(`${target.label} sent a response that is not JSON`, 'upstream_malformed');
    }
    if (!response || typeof response !== 'object' || !Array.isArray(response.output)) throw upstreamFailed(`${target.label} sent a response without output`, 'upstream_malformed');
    const usage = usageFromResponses(response.usage) ?? { inputTokens: estimateTokens(promptChars(body)), outputTokens: estimateTokens(outputChars(response)), cachedTokens: 0 };
    if (key) await writeCache(deps.runtime.query, { projectId: caller.project.id, key, provider: target.provider, model: target.model, ttlSeconds: caller.project.cacheTtlSeconds, response, usage });
    if (gone()) throw canceledError();
    // OpenAI's answer: its bytes reach the client unchanged.
    reply.header('x-gateway-cache', key ? 'miss' : 'off').type('application/json').send(text);
    rec.finish({ status: 200, usage, paidBy: target.paidBy, responseBody: response });
  });
}

async function plainTranslated(
  deps: GatewayDeps,
  caller: CallerContext,
  reply: FastifyReply,
  body: Obj,
  chat: ChatRequest,
  target: Target,
  echo: ResponseEcho,
  keep: ((response: Obj) => Promise<void>) | null,
  rec: CallRecord,
) {
  const key = cacheKeyOf(caller, target, body);
  if (await fromCache(deps, caller, reply, key, rec)) return;
  const prepared = target.adapter.prepare(chat, target.upstreamModel, false, target.entry?.maxOutputTokens ?? null);
  await postPlain(deps, reply, target, target.url, target.headers, prepared.payload, rec, async (text, gone) => {
    const { completion, usage } = target.adapter.parseResponse(text);
    const final = usage ?? { inputTokens: estimateTokens(promptChars(body)), outputTokens: estimateTokens(answerChars(completion)), cachedTokens: 0 };
    const response = chatToResponse(completion, final, echo);
    // Stored and cached before the answer goes out: a follow-up call right after finds it.
    if (keep) await keep(response);
    if (key) await writeCache(deps.runtime.query, { projectId: caller.project.id, key, provider: target.provider, model: target.model, ttlSeconds: caller.project.cacheTtlSeconds, response, usage: final });
    if (gone()) throw canceledError();
    reply.header('x-gateway-cache', key ? 'miss' : 'off').type('application/json').send(JSON.stringify(response));
    rec.finish({ status: 200, usage: final, paidBy: target.paidBy, responseBody: response });
  });
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** OpenAI's stream, byte for byte, read on the way for usage (response.completed / incomplete / failed). */
async function streamNative(deps: GatewayDeps, reply: FastifyReply, body: Obj, target: Target, url: string, payload: string, rec: CallRecord) {
  const opened = await openUpstreamStream(deps, reply, target, { url, headers: target.streamHeaders ?? target.headers, payload }, rec);
  if (!opened) return;
  const { res, client } = opened;
  const raw = reply.raw;
  const parser = new SseParser();
  const decoder = new TextDecoder();
  let usage: TokenUsage | null = null;
  let terminal: string | null = null;
  let failure: string | null = null;
  let chars = 0;
  let content = '';
  let ttftMs: number | null = null;
  const read = (events: { data: string }[]) => {
    for (const e of events) {
      let event: Obj;
      try {
        event = JSON.parse(e.data) as Obj;
      } catch {
        continue;
      }
      const type = String(event.type ?? '');
      if (type === 'response.output_text.delta' || type === 'response.function_call_arguments.delta' || type === 'response.refusal.delta') {
        const delta = typeof event.delta === 'string' ? event.delta : '';
        if (delta && ttftMs === null) ttftMs = performance.now() - rec.started;
        chars += delta.length;
        if (rec.retain && type === 'response.output_text.delta' && content.length < RETAINED_BODY_MAX) content += delta;
      } else if (TERMINAL.has(type)) {
        terminal = type;
        const response = (event.response ?? {}) as Obj;
        usage = usageFromResponses(response.usage) ?? usage;
        if (type === 'response.failed') {
          const err = (response.error ?? {}) as Obj;
          failure = typeof err.message === 'string' ? err.message : 'the response failed';
        }
      } else if (type === 'error') {
        failure = typeof event.message === 'string' ? event.message : 'the stream failed';
      }
    }
  };
  const delivered = (): TokenUsage => ({
    inputTokens: usage?.inputTokens ?? estimateTokens(promptChars(body)),
    outputTokens: usage?.outputTokens ?? estimateTokens(chars),
    cachedTokens: usage?.cachedTokens ?? 0,
  });
  try {
    for await (const bytes of res.body()) {
      if (client.gone()) break;
      raw.write(bytes);
      read(parser.push(decoder.decode(bytes, { stream: true })));
    }
    read(parser.end());
    if (client.gone()) throw canceledError();
    if (!terminal && !failure) {
      const error = upstreamFailed(`${target.label} ended the stream early (no response.completed)`, 'upstream_truncated');
      raw.end(sseOf({ type: 'error', sequence_number: -1, code: error.code, message: error.message, param: null }));
      rec.finish({ status: 502, error: error.message, ttftMs, responseBody: { content }, ...(chars > 0 ? { usage: delivered(), paidBy: target.paidBy } : {}) });
      return;
    }
    raw.end();
    // A failed response is reported by the provider with its usage, which it bills.
    if (failure) rec.finish({ status: 502, error: `${target.label}: ${failure}`, ttftMs, responseBody: { content }, ...(usage || chars > 0 ? { usage: delivered(), paidBy: target.paidBy } : {}) });
    else rec.finish({ status: 200, usage: delivered(), paidBy: target.paidBy, ttftMs, responseBody: { content, status: terminal } });
  } catch (err) {
    if (client.gone()) {
      rec.finish({ status: 200, usage: delivered(), paidBy: target.paidBy, canceled: true, ttftMs, error: 'client closed the stream', responseBody: { content } });
      return;
    }
    const error = err instanceof GatewayError ? err : upstreamFailed('the stream failed');
    if (!(err instanceof GatewayError)) deps.log.error({ err }, 'responses stream failed');
    raw.end(sseOf({ type: 'error', sequence_number: -1, code: error.code, message: error.message, param: null }));
    res.abort();
    rec.finish({ status: error.status, error: error.message, ttftMs, responseBody: { content }, ...(chars > 0 ? { usage: delivered(), paidBy: target.paidBy } : {}) });
  } finally {
    client.off();
  }
}

/** A chat stream translated into Responses events. */
async function streamTranslated(
  deps: GatewayDeps,
  reply: FastifyReply,
  body: Obj,
  chat: ChatRequest,
  target: Target,
  echo: ResponseEcho,
  keep: ((response: Obj) => Promise<void>) | null,
  rec: CallRecord,
) {
  const prepared = target.adapter.prepare(chat, target.upstreamModel, true, target.entry?.maxOutputTokens ?? null);
  const opened = await openUpstreamStream(deps, reply, target, { url: target.streamUrl ?? target.url, headers: target.streamHeaders ?? target.headers, payload: prepared.payload }, rec);
  if (!opened) return;
  const { res, client } = opened;
  const raw = reply.raw;
  const translator = new ResponsesStreamTranslator(echo);
  let usage: TokenUsage | null = null;
  let partial: TokenUsage | null = null;
  let ttftMs: number | null = null;
  const delivered = (): TokenUsage => ({
    inputTokens: usage?.inputTokens ?? partial?.inputTokens ?? estimateTokens(promptChars(body)),
    outputTokens: usage?.outputTokens ?? Math.max(partial?.outputTokens ?? 0, estimateTokens(translator.deliveredChars)),
    cachedTokens: usage?.cachedTokens ?? partial?.cachedTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteTokens ?? partial?.cacheWriteTokens ?? 0,
  });
  try {
    raw.write(translator.start().map(sseOf).join(''));
    for await (const chunk of target.adapter.streamChunks(res.body())) {
      if (client.gone()) break;
      const early = (chunk as Record<symbol, unknown>)[PARTIAL_USAGE] as TokenUsage | undefined;
      if (early) partial = early;
      if (chunk.usage) usage = openAiUsage(chunk.usage) ?? usage;
      const events = translator.push(chunk);
      if (events.length === 0) continue;
      if (ttftMs === null && events.some((e) => e.type.endsWith('.delta'))) ttftMs = performance.now() - rec.started;
      raw.write(events.map(sseOf).join(''));
    }
    if (client.gone()) throw canceledError();
    const final = usage ?? { inputTokens: estimateTokens(promptChars(body)), outputTokens: estimateTokens(translator.deliveredChars), cachedTokens: 0 };
    const { events, response } = translator.finish(final);
    if (keep) await keep(response);
    raw.end(events.map(sseOf).join(''));
    rec.finish({ status: 200, usage: final, paidBy: target.paidBy, ttftMs, responseBody: response });
  } catch (err) {
    if (client.gone()) {
      rec.finish({ status: 200, usage: delivered(), paidBy: target.paidBy, canceled: true, ttftMs, error: 'client closed the stream' });
      return;
    }
    const error = err instanceof GatewayError ? err : upstreamFailed('the stream failed');
    if (!(err instanceof GatewayError)) deps.log.error({ err }, 'responses stream failed');
    raw.end(sseOf(translator.fail(error.code ?? 'upstream_error', error.message)));
    res.abort();
    const chars = translator.deliveredChars;
    rec.finish({ status: error.status, error: error.message, ttftMs, ...(chars > 0 ? { usage: delivered(), paidBy: target.paidBy } : {}) });
  } finally {
    client.off();
  }
}
