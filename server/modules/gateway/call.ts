/**
 * What every gateway endpoint shares (chat completions, messages, responses, embeddings): the
 * call's usage record, routing a model to a target (cached per organization's credentials),
 * admission (credits, rate limit), the client-gone watch, request signing, and the one place that
 * turns a failure into a logged, uncharged record.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { costNanos, modelKind, type TokenUsage } from '../../../shared/models.js';
import type { GatewayConfig } from '../../config.js';
import type { UsageMeter, UsageRecord } from '../usage/meter.js';
import { badRequest, fromDomainError, fromUpstreamStatus, GatewayError, noCredits } from './errors.js';
import { DomainError } from '../../errors.js';
import type { CallerContext, GatewayRuntime } from './runtime.js';
import type { Target } from './targets.js';
import { cachedRoutes, CallPlan, isRefusal, modelChain, RoutedTargets, routesFor, targetOf, type KeyChoice } from './routing.js';
import type { UpstreamPools } from './upstream/http.js';
import type { VertexTokens } from './vertex.js';
import type { ProviderHealth } from './health.js';
import { isDatabaseUnavailable } from '../../db/pg-errors.js';
import { keyRefusal } from '../../../shared/key-rules.js';
import { LimitHold, SlotHold, type SpendCharge, type SpendLimits } from '../limits/engine.js';
import { concurrencyRefusal, limitSpecs, refusalError, refusedLimit, slotSpec, worstCost } from '../limits/admission.js';
import type { RefusedLimit } from '../limits/commit.js';

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
  /** Spend limits' leases and reservations (server/modules/limits/engine.ts). */
  limits: SpendLimits;
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
  /** What the current attempt holds against spend limits (issue #12); null while nothing is held. */
  private held: HeldReservation | null = null;
  /** A slot of the organization's cap on calls in flight (admitCall), freed when the call finishes. */
  private slot: { release(): void } | null = null;
  /** The spend limit that refused this call (a 402), for the limit alerts. */
  refusedBy: RefusedLimit | null = null;

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

  /** Takes over a reservation made for the current attempt (admitTarget); a previous one is released first. */
  hold(reservation: HeldReservation): void {
    this.releaseReservation();
    this.held = reservation;
  }

  /**
   * Gives back what the current attempt reserved against spend limits (the router calls it before
   * the next attempt after a failed one). A no-op while nothing is held; finish() settles the rest.
   */
  releaseReservation(): void {
    const held = this.held;
    this.held = null;
    held?.release();
  }

  /** Takes over the call's slot in the organization's cap on calls in flight. */
  holdSlot(slot: { release(): void }): void {
    this.slot?.release();
    this.slot = slot;
  }

  /** The attempt under way (routing: runAttempts), completed by finish() or by failAttempt(). */
  private current: { provider: string; model: string; keyName: string; providerKeyId: string | null; t0: number } | null = null;
  /** How the call ended (set by finish). */
  outcome: CallOutcome | null = null;

  /** Starts an upstream attempt (the router, before each one). */
  beginAttempt(target: Target, keyName: string, t0: number): void {
    this.current = { provider: target.provider, model: target.model, keyName, providerKeyId: target.providerKeyId, t0 };
  }

  /** The attempt under way failed before anything reached the client: recorded; the next one may start. */
  failAttempt(status: number, error: string): AttemptRecord | null {
    const c = this.current;
    if (!c) return null;
    this.current = null;
    const attempt: AttemptRecord = { provider: c.provider, model: c.model, keyName: c.keyName, providerKeyId: c.providerKeyId, status, latencyMs: performance.now() - c.t0, error };
    this.attempts.push(attempt);
    return attempt;
  }

  finish(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    this.outcome = outcome;
    // The attempt that answered (or failed after the first byte) is the last one.
    const c = this.current;
    if (c) {
      this.current = null;
      this.attempts.push({ provider: c.provider, model: c.model, keyName: c.keyName, providerKeyId: c.providerKeyId, status: outcome.status, latencyMs: performance.now() - c.t0, error: outcome.error ?? null });
    }
    const usage = outcome.usage ?? { inputTokens: 0, outputTokens: 0, cachedTokens: 0 };
    const paidBy = outcome.paidBy ?? 'none';
    const priced = paidBy === 'credits' || paidBy === 'provider_key';
    const entry = this.target?.entry;
    const cost = priced && entry ? costNanos(entry.nanosPerMTok, usage) : 0n;
    const held = this.held;
    this.held = null;
    const spend = held?.settle(cost);
    this.slot?.release();
    this.slot = null;
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
      costNanos: cost,
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
      attempts: this.attempts,
      ...(spend && spend.length > 0 ? { spend } : {}),
      ...(this.refusedBy ? { refusedBy: this.refusedBy } : {}),
    });
  }
}

/**
 * A call's hold on spend limits (server/modules/limits): release() gives it all back, settle(cost)
 * turns it into the exact cost (the meter then commits that cost as spent). Each is called at most
 * once, and only one of them.
 */
export interface HeldReservation {
  release(): void;
  settle(costNanos: bigint): readonly SpendCharge[];
}

export { RoutedTargets };

/**
 * Routes `model` for the caller's project mode and credentials to its first candidate (no
 * fallback: count_tokens); records provider and model on `rec`.
 */
export async function targetFor(deps: CompletionDeps, caller: CallerContext, model: string, rec: CallRecord): Promise<Target> {
  rec.model = model;
  const routes = await routesFor(deps, caller, model);
  const option = routes.options[0]!;
  const key = option.tiers[0]![0]!;
  const target = await targetOf(deps, caller.project.mode, await deps.runtime.providerCredentials(caller.org.id), key);
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
  await deps.runtime.checkRateLimit(caller.key);
  const slots = slotSpec(caller);
  if (slots) {
    const slot = await deps.limits.takeSlot(slots);
    if (!(slot instanceof SlotHold)) throw concurrencyRefusal(slot);
    rec.holdSlot(slot);
  }
}

/** Whether admitCall has anything to check for this caller (a rate limit, a cap on calls in flight): most have neither. */
export const needsCallAdmission = (caller: CallerContext): boolean => Boolean(caller.key.rpmLimit) || slotSpec(caller) !== null;

/**
 * Admission of one attempt at one target, before it goes upstream: the key's allow lists, then who
 * pays (a credit-paid target needs credits). Called again for each fallback target.
 */
export async function admitTarget(deps: CompletionDeps, caller: CallerContext, target: Target, rec: CallRecord): Promise<void> {
  const key = caller.key;
  if (key.allowedModels || key.allowedProviders) {
    const ids = target.entry ? [target.entry.id, ...(target.entry.aliases ?? [])] : [target.model, target.upstreamModel];
    const refusal = keyRefusal(key, target.provider, ids);
    if (refusal) throw new GatewayError(403, `${refusal} (change the key's allowed models under API keys)`, 'invalid_request_error', 'model_not_allowed');
  }
  if (target.paidBy === 'credits' && caller.org.creditsNanos <= 0n) throw noCredits();
  // Spend limits: the attempt's largest possible cost is reserved against every limit that applies.
  const entry = target.entry;
  if (!entry || (target.paidBy !== 'credits' && target.paidBy !== 'provider_key')) return;
  const specs = limitSpecs(caller, target.paidBy);
  if (specs.length === 0) return;
  rec.releaseReservation();
  const held = await deps.limits.reserve(specs, worstCost(entry, rec.ask));
  if (!(held instanceof LimitHold)) {
    rec.refusedBy = refusedLimit(held);
    throw refusalError(held, entry, rec.ask);
  }
  rec.hold(held);
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
  // From the caches without a promise on nearly every call; authenticate() reads what they lack.
  const caller = deps.runtime.cachedCaller(authorization) ?? (await deps.runtime.authenticate(authorization));
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

// ---------------------------------------------------------------------------------------------
// The attempt loop (issue #11): fallback models, providers and keys
// ---------------------------------------------------------------------------------------------

/** What a call asks of routing: the model, the body's fallback list, stickiness, and whether fallback is off. */
export interface RouteRequest {
  model: string;
  /** The body's `models` (OpenRouter's convention), checked by requestModels; null: none (the project's fallbacks apply). */
  models: string[] | null;
  /** Whether the project's fallback chains apply (not for embeddings: another model embeds differently). */
  projectFallbacks: boolean;
  /** x-session-id, prompt_cache_key or metadata.user_id (routing.ts sessionOf). */
  session: string | null;
  /** x-gateway-no-fallback: true: exactly one attempt. */
  noFallback: boolean;
}

/** An endpoint's part of each attempt. */
export interface AttemptSteps<P> {
  /**
   * The target's checks and the upstream request, before admission: a 4xx GatewayError refuses this
   * target without going upstream (the next candidate may serve; the first refusal is the answer
   * when no attempt could be made).
   */
  prepare(target: Target): P | Promise<P>;
  /** The attempt: answers the client and finishes the record, or throws before anything reached the client. */
  send(target: Target, prepared: P): Promise<void>;
}

const COOL_DOWN_AUTH_MS = 5 * 60_000;
const COOL_DOWN_RATE_LIMIT_MS = 30_000;
const COOL_DOWN_MAX_MS = 5 * 60_000;

/** retry-after (seconds or an HTTP date) in milliseconds, or null. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * What a failed attempt means: whether the next candidate may be tried, whether the failure is the
 * provider's (health), the upstream status for the record (0: no answer), and how long to cool the key down.
 */
export function attemptVerdict(err: unknown): { retry: boolean; ok: boolean | null; status: number; coolDownMs: number } {
  if (!(err instanceof GatewayError)) return { retry: false, ok: null, status: 0, coolDownMs: 0 };
  const status = err.upstreamStatus ?? 0;
  switch (err.code) {
    case 'upstream_rate_limited': {
      const after = retryAfterMs(err.headers['retry-after']);
      return { retry: true, ok: false, status: status || 429, coolDownMs: Math.min(COOL_DOWN_MAX_MS, Math.max(1000, after ?? COOL_DOWN_RATE_LIMIT_MS)) };
    }
    case 'upstream_auth_failed':
      return { retry: true, ok: false, status, coolDownMs: COOL_DOWN_AUTH_MS };
    case 'upstream_bad_request':
      // The request's own fault: another provider would refuse it too.
      return { retry: false, ok: true, status, coolDownMs: 0 };
    case 'upstream_unreachable':
    case 'upstream_timeout':
    case 'upstream_disconnected':
    case 'upstream_address_refused':
    case 'upstream_malformed':
    case 'upstream_truncated':
    case 'upstream_error':
      return { retry: true, ok: false, status, coolDownMs: 0 };
    default:
      return { retry: false, ok: null, status, coolDownMs: 0 };
  }
}

/**
 * Runs a call's attempts: the plan's candidates in order (routing.ts CallPlan), each prepared and
 * admitted (admitTarget per attempt, admitCall once before the first), then sent. A failure before
 * the first byte reached the client (connection error, timeout before headers, 5xx, 429, 401/403)
 * moves to the next candidate, at most the project's maxAttempts (x-gateway-no-fallback: one); a
 * 4xx the request caused, or anything after the first byte, is final. Every attempt goes to the
 * health and onto rec.attempts; only the one that answered is charged (its finish). When every
 * attempt failed, the last failure is thrown (runCall logs it, uncharged).
 */
export async function runAttempts<P>(deps: CompletionDeps, caller: CallerContext, reply: FastifyReply, rec: CallRecord, request: RouteRequest, steps: AttemptSteps<P>): Promise<void> {
  const first = cachedRoutes(deps, caller, request.model) ?? (await routesFor(deps, caller, request.model));
  const routing = caller.project.routing;
  const models = request.noFallback ? [request.model] : modelChain(request.model, request.models, routing, request.projectFallbacks);
  const maxAttempts = request.noFallback ? 1 : Math.max(1, routing.maxAttempts);
  const plan = new CallPlan(deps.health, routing.strategy, first, models, (m) => routesFor(deps, caller, m), request.session);
  let admitted = false;
  let refusal: unknown = null;
  let failure: unknown = null;
  let made = 0;
  while (made < maxAttempts) {
    const key: KeyChoice | null = await plan.next();
    if (!key) break;
    let target: Target;
    let prepared: P;
    try {
      target = key.target ?? (await targetOf(deps, caller.project.mode, await deps.runtime.providerCredentials(caller.org.id), key));
      use(rec, target);
      const preparing = steps.prepare(target);
      prepared = preparing instanceof Promise ? await preparing : preparing;
      await admitTarget(deps, caller, target, rec);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      refusal ??= err;
      continue;
    }
    // A limit that refused an earlier candidate did not refuse the call.
    if (refusal) rec.refusedBy = null;
    if (!admitted) {
      admitted = true;
      if (needsCallAdmission(caller)) await admitCall(deps, caller, rec);
    }
    made++;
    const raw = reply.raw;
    raw.setHeader('x-gateway-provider', target.provider);
    raw.setHeader('x-gateway-attempts', made < 10 ? ATTEMPT_COUNTS[made]! : String(made));
    const t0 = performance.now();
    rec.beginAttempt(target, key.keyName, t0);
    try {
      await steps.send(target, prepared);
    } catch (err) {
      if (rec.finished || reply.sent || raw.headersSent) throw err;
      const verdict = attemptVerdict(err);
      rec.failAttempt(verdict.status, err instanceof Error ? err.message : 'internal error');
      if (verdict.ok !== null) {
        deps.health.record({ orgId: caller.org.id, provider: target.provider, credential: key.ref, ok: verdict.ok, status: verdict.status, latencyMs: performance.now() - t0, ttftMs: null, at: Date.now() });
      }
      // A key's own failure (401/403/429) cools that key down; the provider's sends the call elsewhere.
      if (verdict.coolDownMs > 0) deps.health.coolDown(key.ref, verdict.coolDownMs);
      else if (verdict.retry) plan.passOver(key, target.url);
      failure = err;
      if (!verdict.retry) throw err;
      rec.releaseReservation();
      continue;
    }
    const outcome = rec.outcome;
    if (outcome && !outcome.cached && outcome.status !== 499) {
      const ttft = outcome.ttftMs ?? null;
      deps.health.record({
        orgId: caller.org.id,
        provider: target.provider,
        credential: key.ref,
        ok: outcome.status < 500,
        status: outcome.status,
        latencyMs: performance.now() - t0,
        ttftMs: ttft === null ? null : Math.max(0, ttft - (t0 - rec.started)),
        at: Date.now(),
      });
    }
    return;
  }
  throw failure ?? refusal ?? plan.routingError ?? new GatewayError(503, 'no provider could take this call right now; retry shortly', 'server_error', 'no_route');
}

const ATTEMPT_COUNTS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
