/**
 * What every gateway endpoint shares (chat completions, messages, responses, embeddings): the
 * call's usage record, routing a model to a target (cached per organization's credentials),
 * admission (credits, rate limit), the client-gone watch, request signing, and the one place that
 * turns a failure into a logged, uncharged record.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { costNanos, modelKind, routeModel, type TokenUsage } from '../../../shared/models.js';
import type { GatewayConfig } from '../../config.js';
import type { UsageMeter, UsageRecord } from '../usage/meter.js';
import { badRequest, fromDomainError, fromUpstreamStatus, GatewayError, modelNotFound, noCredits } from './errors.js';
import { DomainError } from '../../errors.js';
import type { CallerContext, GatewayRuntime } from './runtime.js';
import { resolveTarget, type ProviderCredential, type Target } from './targets.js';
import type { UpstreamPools } from './upstream/http.js';
import type { VertexTokens } from './vertex.js';
import type { ProviderHealth } from './health.js';
import { isDatabaseUnavailable } from '../../db/pg-errors.js';
import { keyRefusal } from '../../../shared/key-rules.js';

/** Which API a call came through; stored on each request log row and in the rollups. */
export type GatewayEndpoint = 'chat.completions' | 'messages' | 'responses' | 'embeddings';

export interface CompletionDeps {
  runtime: GatewayRuntime;
  meter: UsageMeter;
  /** Routed targets per credential list (this process's; see RoutedTargets). */
  targets: RoutedTargets;
  upstream: UpstreamPools;
  vertex: VertexTokens;
  /** Upstream attempts' outcomes, cooled-down keys and open circuits (health.ts). */
  health: ProviderHealth;
  config: GatewayConfig;
  log: { error(o: unknown, m?: string): void; warn?(o: unknown, m?: string): void };
}
export type GatewayDeps = CompletionDeps;

export const RETAINED_BODY_MAX = 256 * 1024;

/** A rough count for what no provider reported (a stream cut short): about 4 characters a token. */
export const estimateTokens = (chars: number) => Math.ceil(chars / 4);

/** A body as the request log keeps it: whole up to RETAINED_BODY_MAX characters of JSON, else a preview. */
export function retained(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text.length <= RETAINED_BODY_MAX ? value : { truncated: true, preview: text.slice(0, RETAINED_BODY_MAX) };
}

export interface CallOutcome {
  status: number;
  usage?: TokenUsage | null;
  error?: string | null;
  paidBy?: UsageRecord['paidBy'];
  cached?: boolean;
  canceled?: boolean;
  ttftMs?: number | null;
  responseBody?: unknown;
}

/**
 * One upstream attempt of a call, as the request log shows it (issue #11): a call that failed over
 * has several; the last one is the attempt that answered (or the final failure).
 */
export interface AttemptRecord {
  provider: string;
  model: string;
  /** The provider key's name (an organization's key), or "operator" for the gateway's own keys. */
  keyName: string;
  providerKeyId: string | null;
  /** Upstream status, 0 for a connection error or timeout before headers. */
  status: number;
  latencyMs: number;
  error: string | null;
}

/** Builds the call's usage record as the call unfolds; finish() hands it to the meter once. */
export class CallRecord {
  provider = 'unknown';
  model = 'unknown';
  streamed = false;
  requestBody: unknown = null;
  target: Target | null = null;
  /** Upstream attempts so far (filled by the router; empty for calls answered without going upstream). */
  attempts: AttemptRecord[] = [];
  /** What the call may cost at most (see CallAsk); set by the endpoint after validation. */
  ask: CallAsk = { promptChars: 0, maxOutputTokens: null };
  private done = false;

  constructor(
    private readonly deps: CompletionDeps,
    private readonly caller: CallerContext,
    readonly started: number,
    private readonly createdAt: Date,
    readonly endpoint: GatewayEndpoint = 'chat.completions',
  ) {}

  get retain(): boolean {
    return this.caller.org.retentionLevel === 'retain';
  }

  get finished(): boolean {
    return this.done;
  }

  finish(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    const usage = outcome.usage ?? { inputTokens: 0, outputTokens: 0, cachedTokens: 0 };
    const paidBy = outcome.paidBy ?? 'none';
    const priced = paidBy === 'credits' || paidBy === 'provider_key';
    const entry = this.target?.entry;
    this.deps.meter.record({
      orgId: this.caller.org.id,
      projectId: this.caller.project.id,
      apiKeyId: this.caller.key.apiKeyId,
      endpoint: this.endpoint,
      provider: this.provider,
      model: this.model,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      cachedTokens: usage.cachedTokens,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      costNanos: priced && entry ? costNanos(entry.nanosPerMTok, usage) : 0n,
      paidBy,
      latencyMs: performance.now() - this.started,
      ttftMs: outcome.ttftMs ?? null,
      status: outcome.status,
      error: outcome.error ?? null,
      cached: outcome.cached ?? false,
      streamed: this.streamed,
      canceled: outcome.canceled ?? false,
      requestBody: this.retain ? this.requestBody : null,
      responseBody: this.retain && outcome.responseBody !== undefined ? retained(outcome.responseBody) : null,
      createdAt: this.createdAt,
    });
  }
}

/**
 * Routed targets per organization credential list (the runtime keeps one list object per
 * organization until its provider keys change), project mode and model name: routing and URL and
 * header building happen once, not on every call.
 */
export class RoutedTargets {
  private readonly byCredentials = new WeakMap<ProviderCredential[], Map<string, Target>>();
  get(creds: ProviderCredential[]): Map<string, Target> | undefined {
    return this.byCredentials.get(creds);
  }
  set(creds: ProviderCredential[], known: Map<string, Target>): void {
    this.byCredentials.set(creds, known);
  }
}
const MAX_TARGETS_PER_ORG = 500;

/** Routes `model` for the caller's project mode and credentials; records provider and model on `rec`. */
export async function targetFor(deps: CompletionDeps, caller: CallerContext, model: string, rec: CallRecord): Promise<Target> {
  const creds = await deps.runtime.providerCredentials(caller.org.id);
  const cacheKey = `${caller.project.mode}\u0000${model}`;
  const targets = deps.targets;
  let known = targets.get(creds);
  const cached = known?.get(cacheKey);
  if (cached) return use(rec, cached);
  const route = routeModel(model, (name) => creds.some((c) => c.kind === 'custom' && c.name.toLowerCase() === name.toLowerCase()));
  if (!route) throw unknownModel(model);
  if (route.kind === 'catalog') {
    rec.provider = route.provider;
    rec.model = route.model;
  }
  const target = await resolveTarget(deps.config, caller.project.mode, route, creds, deps.vertex);
  if (target.reusable) {
    if (!known) targets.set(creds, (known = new Map()));
    if (known.size < MAX_TARGETS_PER_ORG) known.set(cacheKey, target);
  }
  return use(rec, target);
}

function use(rec: CallRecord, target: Target): Target {
  checkModelKind(target, rec.endpoint);
  rec.target = target;
  rec.provider = target.provider;
  rec.model = target.model;
  return target;
}

/**
 * Embedding models answer only POST /v1/embeddings, chat models every other endpoint: a 400 naming
 * the model otherwise. A model the catalog does not know (own key, custom provider) is not checked.
 */
export function checkModelKind(target: Pick<Target, 'entry' | 'model'>, endpoint: GatewayEndpoint): void {
  if (!target.entry) return;
  const kind = modelKind(target.entry);
  if (endpoint === 'embeddings' && kind !== 'embedding') {
    throw badRequest(`model "${target.model}" is a chat model, not an embedding model; POST /v1/embeddings takes an embedding model (GET /v1/models lists them with kind "embedding")`, 'model_not_supported');
  }
  if (endpoint !== 'embeddings' && kind === 'embedding') {
    throw badRequest(`model "${target.model}" is an embedding model; call POST /v1/embeddings with it, not ${ENDPOINT_PATHS[endpoint]}`, 'model_not_supported');
  }
}

const ENDPOINT_PATHS: Record<GatewayEndpoint, string> = {
  'chat.completions': 'POST /v1/chat/completions',
  messages: 'POST /v1/messages',
  responses: 'POST /v1/responses',
  embeddings: 'POST /v1/embeddings',
};

function unknownModel(model: string): GatewayError {
  return modelNotFound(`model "${model}" is not in the catalog; use provider/model (e.g. openai/gpt-4o-mini) or see GET /v1/models`);
}

/**
 * What a call may cost at most, set by each endpoint right after validating the body: the prompt's
 * size and the output it asked for (max_tokens and its namesakes; null: the model's output limit).
 * Spend limits reserve this call's largest possible cost from it (issue #12).
 */
export interface CallAsk {
  promptChars: number;
  maxOutputTokens: number | null;
}

/** A max_tokens-like field as a token count, or null when absent or not a positive integer (the body checks refuse those elsewhere). */
export const outputAsked = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);

/**
 * Admission once per call, before its first attempt: the key's rate limit (and the organization's
 * cap on calls in flight). Attempts after a failover do not count again.
 */
export async function admitCall(deps: CompletionDeps, caller: CallerContext, rec: CallRecord): Promise<void> {
  void rec;
  await deps.runtime.checkRateLimit(caller.key);
}

/**
 * Admission of one attempt at one target, before it goes upstream: the key's allow lists, then who
 * pays (a credit-paid target needs credits). Called again for each fallback target.
 */
export async function admitTarget(deps: CompletionDeps, caller: CallerContext, target: Target, rec: CallRecord): Promise<void> {
  void deps;
  void rec;
  const key = caller.key;
  if (key.allowedModels || key.allowedProviders) {
    const ids = target.entry ? [target.entry.id, ...(target.entry.aliases ?? [])] : [target.model, target.upstreamModel];
    const refusal = keyRefusal(key, target.provider, ids);
    if (refusal) throw new GatewayError(403, `${refusal} (change the key's allowed models under API keys)`, 'invalid_request_error', 'model_not_allowed');
  }
  if (target.paidBy === 'credits' && caller.org.creditsNanos <= 0n) throw noCredits();
}

/** Both admissions for a call with one target: the target's first (a refused model costs no rate limit), then the call's. */
export async function admit(deps: CompletionDeps, caller: CallerContext, target: Target, rec: CallRecord): Promise<void> {
  await admitTarget(deps, caller, target, rec);
  await admitCall(deps, caller, rec);
}

/** The headers of one upstream call: the target's, signed for this URL and body when its credential signs calls. */
export function signed(target: Target, url: string, headers: Record<string, string>, payload: string): Record<string, string> {
  return target.sign ? target.sign(url, headers, payload) : headers;
}

/** Watches for the client going away before the response finished; `abort` cancels the upstream work. */
export function onClientGone(reply: FastifyReply, abort: () => void): { gone(): boolean; off(): void } {
  let gone = false;
  const listener = () => {
    if (!reply.raw.writableFinished) {
      gone = true;
      abort();
    }
  };
  reply.raw.on('close', listener);
  return { gone: () => gone, off: () => reply.raw.off('close', listener) };
}

/**
 * Runs one metered call: authenticates (`authorization` is the `Bearer <key>` header value), opens
 * its record, and on any failure before the record finished logs it uncharged with the error's
 * status; the error is rethrown for the endpoint's error handler while nothing was sent.
 */
export async function runCall(
  deps: CompletionDeps,
  reply: FastifyReply,
  authorization: string | undefined,
  endpoint: GatewayEndpoint,
  handle: (caller: CallerContext, rec: CallRecord) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const createdAt = new Date();
  const caller = await deps.runtime.authenticate(authorization);
  const rec = new CallRecord(deps, caller, started, createdAt, endpoint);
  try {
    await handle(caller, rec);
  } catch (caught) {
    // Domain errors from shared services take the gateway's shape here, once.
    const err = caught instanceof DomainError ? fromDomainError(caught) : caught;
    const error = err instanceof GatewayError ? err : null;
    if (!error) deps.log.error({ err }, 'gateway call failed');
    const unavailable = !error && isDatabaseUnavailable(err);
    const status = error?.status ?? (unavailable ? 503 : 500);
    rec.finish({ status, error: error?.message ?? (unavailable ? 'database unavailable' : 'internal error') });
    if (!reply.sent && !reply.raw.headersSent) throw err;
  }
}

/** `Authorization: Bearer <key>`, or Anthropic's `x-api-key: <key>` when no Authorization header came. */
export function authorizationOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth) return auth;
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key ? `Bearer ${key}` : undefined;
}

/** The response headers of an event stream (no buffering by proxies on the way). */
const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' } as const;

/**
 * Opens an upstream stream and, once it answered 200, the client's event stream (the reply is
 * hijacked). An upstream error status becomes the gateway's error (nothing was sent yet). Null when
 * the client left before the stream started: then the call is already logged as canceled.
 * `client.gone()` tells later whether the client went away; going away aborts the upstream call.
 */
export async function openUpstreamStream(
  deps: CompletionDeps,
  reply: FastifyReply,
  target: Target,
  request: { url: string; headers: Record<string, string>; payload: string },
  rec: CallRecord,
  opts: { extraHeaders?: (upstream: Record<string, string | string[] | undefined>) => Record<string, string> } = {},
) {
  const { url, headers, payload } = request;
  const call = deps.upstream.postJson(url, signed(target, url, headers, payload), payload, deps.config.upstreamTimeoutMs, target.label);
  let abortBody: (() => void) | null = null;
  const client = onClientGone(reply, () => {
    call.abort();
    abortBody?.();
  });
  try {
    const res = await call.response;
    if (res.status !== 200) throw fromUpstreamStatus(target.label, res.status, await res.text(256 * 1024), res.headers);
    abortBody = () => res.abort();
    reply.hijack();
    reply.raw.writeHead(200, { ...STREAM_HEADERS, ...opts.extraHeaders?.(res.headers) });
    return { res, client };
  } catch (err) {
    client.off();
    if (client.gone()) {
      rec.finish({ status: 499, canceled: true, error: 'client closed the connection before the stream started' });
      return null;
    }
    throw err;
  }
}

/**
 * The checks chat completions and messages share before routing: a JSON object with a model name
 * (`modelExample` shows one in the error) and a non-empty list of messages that each have a role.
 */
export function conversationBody(body: unknown, modelExample: string): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.trim() === '') throw badRequest(`model is required (e.g. ${modelExample})`, 'model_required');
  if (b.model.length > 200) throw badRequest('model must be at most 200 characters');
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw badRequest('messages must be a non-empty array');
  for (const [i, m] of b.messages.entries()) {
    if (!m || typeof m !== 'object' || typeof (m as { role?: unknown }).role !== 'string') throw badRequest(`messages[${i}].role is required`);
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw badRequest('stream must be a boolean');
  return b;
}
