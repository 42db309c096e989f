/**
 * Where a call may go, in which order (issue #11): the plan of candidate attempts.
 *
 * A requested model (`model`, then the body's `models` in order, else the project's fallback chain
 * for it) becomes route options: a bare catalog name listed at several providers (Claude at
 * Anthropic and Bedrock, GPT at OpenAI and Azure, ...) may go to each of them the project can use,
 * ordered by the project's strategy; `provider/model` pins one provider. Each option holds a key
 * pool: the organization's keys (not in credits mode) and then the operator's (credits; not in
 * provider-keys mode), each key with a weight. A call walks the plan: options in order, keys by
 * weighted choice, skipping keys the health says are unavailable (cooled down, circuit open), until
 * an attempt answers or the project's maxAttempts is reached.
 *
 * Sticky sessions: a call carrying a session id (x-session-id, prompt_cache_key, Anthropic
 * metadata.user_id) starts at the candidate with the highest rendezvous hash of (session, key)
 * among the available ones, weighted by the keys' weights: every instance picks the same one with
 * no shared state, and only the sessions of a key that becomes unavailable move.
 *
 * Cost: route options are built once per (organization credential list, project mode, model)
 * and cached in RoutedTargets (the runtime keeps one credential list object per organization
 * until its keys change); a model with one provider and one key walks a plan of one step.
 */
import { MODEL_CATALOG, routeModel, type ModelRoute, type PricedModel, type RouteProvider } from '../../../shared/models.js';
import type { CompletionDeps } from './call.js';
import { badRequest, GatewayError, modelNotFound } from './errors.js';
import type { CredentialRef, ProviderHealth } from './health.js';
import type { CallerContext, ProjectRouting, RoutingStrategy } from './runtime.js';
import { catalogTarget, customTarget, routeCredentials, type PaidBy, type ProjectMode, type ProviderCredential, type Target } from './targets.js';
import { DomainError } from '../../errors.js';

/** One key of a route option's pool. */
export interface KeyChoice {
  readonly option: RouteOption;
  /** The health's name for this key: the provider key's id, or `operator:<provider>:<index>`. */
  readonly ref: CredentialRef;
  /** As the request log shows it: the provider key's name, or "operator". */
  readonly keyName: string;
  readonly providerKeyId: string | null;
  readonly weight: number;
  readonly paidBy: PaidBy;
  readonly cred: ProviderCredential;
  /** Resolved once; null when it holds something short-lived (a Vertex access token): resolved per attempt. */
  target: Target | null;
}

/** One provider serving one model, with its key pool. */
export interface RouteOption {
  readonly provider: RouteProvider;
  readonly route: ModelRoute;
  /** The organization's keys first (hybrid: they pay), then the operator's. */
  readonly tiers: readonly (readonly KeyChoice[])[];
  /** Input plus output list price in nano-dollars per million tokens (the price strategy); 0 when unknown. */
  readonly price: number;
}

/** Every way to serve one requested model (cached per credential list, mode and model). */
export interface ModelRoutes {
  readonly model: string;
  readonly options: readonly RouteOption[];
  /** Options ordered by a strategy, recomputed at most once a second. */
  order: { strategy: RoutingStrategy; at: number; options: readonly RouteOption[] } | null;
}

/** Bare catalog names (ids and aliases) to the entries of every provider listing them, catalog order. */
const SERVED_BY = new Map<string, PricedModel[]>();
for (const entry of MODEL_CATALOG) {
  for (const name of [entry.id, ...(entry.aliases ?? [])]) {
    let list = SERVED_BY.get(name);
    if (!list) SERVED_BY.set(name, (list = []));
    if (!list.some((e) => e.provider === entry.provider)) list.push(entry);
  }
}

const priceOf = (entry: PricedModel | undefined): number => (entry ? Number(entry.nanosPerMTok.input + entry.nanosPerMTok.output) : 0);

/**
 * Routed options per organization credential list (the runtime keeps one list object per
 * organization until its provider keys change), project mode and model name.
 */
export class RoutedTargets {
  private readonly byCredentials = new WeakMap<ProviderCredential[], Map<string, ModelRoutes>>();
  get(creds: ProviderCredential[]): Map<string, ModelRoutes> | undefined {
    return this.byCredentials.get(creds);
  }
  set(creds: ProviderCredential[], known: Map<string, ModelRoutes>): void {
    this.byCredentials.set(creds, known);
  }
}
const MAX_ROUTES_PER_ORG = 500;

const modeKey = (mode: ProjectMode) => (mode === 'credits' ? 'c\u0000' : mode === 'hybrid' ? 'h\u0000' : 'p\u0000');

/** routesFor() without a promise when this process has the answer cached (nearly every call); undefined otherwise. */
export function cachedRoutes(deps: Pick<CompletionDeps, 'runtime' | 'targets'>, caller: CallerContext, model: string): ModelRoutes | undefined {
  const creds = deps.runtime.cachedCredentials(caller.org.id);
  return creds ? deps.targets.get(creds)?.get(modeKey(caller.project.mode) + model) : undefined;
}

/** The route options of `model` for the caller's mode and credentials; throws 404/400 when it cannot be served at all. */
export async function routesFor(deps: Pick<CompletionDeps, 'runtime' | 'targets' | 'config' | 'vertex'>, caller: CallerContext, model: string): Promise<ModelRoutes> {
  const creds = await deps.runtime.providerCredentials(caller.org.id);
  const cacheKey = modeKey(caller.project.mode) + model;
  let known = deps.targets.get(creds);
  const cached = known?.get(cacheKey);
  if (cached) return cached;
  const routes = await buildRoutes(deps, caller.project.mode, creds, model);
  if (!known) deps.targets.set(creds, (known = new Map()));
  if (known.size < MAX_ROUTES_PER_ORG) known.set(cacheKey, routes);
  return routes;
}

function unknownModel(model: string): GatewayError {
  return modelNotFound(`model "${model}" is not in the catalog; use provider/model (e.g. openai/gpt-4o-mini) or see GET /v1/models`);
}

async function buildRoutes(deps: Pick<CompletionDeps, 'config' | 'vertex'>, mode: ProjectMode, creds: ProviderCredential[], model: string): Promise<ModelRoutes> {
  const route = routeModel(model, (name) => creds.some((c) => c.kind === 'custom' && c.name.toLowerCase() === name.toLowerCase()));
  if (!route) throw unknownModel(model);
  const routes: ModelRoute[] = [route];
  // A bare catalog name: every provider listing it (the first one is routeModel's).
  if (route.kind === 'catalog' && !model.includes('/')) {
    for (const entry of SERVED_BY.get(model) ?? []) {
      if (entry.provider !== route.provider) routes.push({ kind: 'catalog', provider: entry.provider, model: entry.id, entry });
    }
  }
  const options: RouteOption[] = [];
  let firstError: unknown = null;
  for (const r of routes) {
    try {
      const option = await buildOption(deps, mode, creds, r);
      if (option) options.push(option);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      firstError ??= err;
    }
  }
  if (options.length === 0) throw firstError ?? unknownModel(model);
  return { model, options, order: null };
}

async function buildOption(deps: Pick<CompletionDeps, 'config' | 'vertex'>, mode: ProjectMode, creds: ProviderCredential[], route: ModelRoute): Promise<RouteOption | null> {
  const keysOf = async (option: RouteOption, list: ProviderCredential[]) => {
    const keys: KeyChoice[] = [];
    let firstError: unknown = null;
    for (const cred of list) {
      try {
        const target = route.kind === 'custom' ? await customTarget(deps.config, mode, route, creds, deps.vertex) : await catalogTarget(deps.config, route, cred, deps.vertex);
        const operator = cred.id === 'operator';
        keys.push({
          option,
          ref: operator ? `operator:${route.kind === 'catalog' ? route.provider : 'custom'}:${cred.operatorIndex ?? 0}` : cred.id,
          keyName: operator ? 'operator' : cred.name,
          providerKeyId: operator ? null : cred.id,
          weight: cred.weight !== undefined && Number.isFinite(cred.weight) && cred.weight >= 0 ? cred.weight : 1,
          paidBy: target.paidBy,
          cred,
          target: target.reusable ? target : null,
        });
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        firstError ??= err;
      }
    }
    if (keys.length === 0 && firstError) throw firstError;
    return keys;
  };
  if (route.kind === 'custom') {
    const cred = creds.find((c) => c.kind === 'custom' && c.name.toLowerCase() === route.name.toLowerCase())!;
    const option: { -readonly [K in keyof RouteOption]: RouteOption[K] } = { provider: 'custom', route, tiers: [], price: priceOf(undefined) };
    option.tiers = [await keysOf(option, [cred])];
    return option;
  }
  const { own, operator } = routeCredentials(deps.config, mode, route, creds);
  const option: { -readonly [K in keyof RouteOption]: RouteOption[K] } = { provider: route.provider, route, tiers: [], price: priceOf(route.entry) };
  const tiers: KeyChoice[][] = [];
  let firstError: unknown = null;
  for (const list of [own, operator]) {
    if (list.length === 0) continue;
    try {
      const keys = await keysOf(option, list);
      if (keys.length > 0) tiers.push(keys);
    } catch (err) {
      firstError ??= err;
    }
  }
  if (tiers.length === 0) {
    if (firstError) throw firstError;
    return null;
  }
  option.tiers = tiers;
  return option;
}

/** A key's target: the cached one, or resolved now (Vertex: a fresh access token). */
export async function targetOf(deps: Pick<CompletionDeps, 'config' | 'vertex'>, mode: ProjectMode, creds: ProviderCredential[], key: KeyChoice): Promise<Target> {
  if (key.target) return key.target;
  const route = key.option.route;
  return route.kind === 'custom' ? customTarget(deps.config, mode, route, creds, deps.vertex) : catalogTarget(deps.config, route, key.cred, deps.vertex);
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

const ORDER_TTL_MS = 1000;

/**
 * The options in the strategy's order (ties keep catalog order): price (list price, input plus
 * output), latency (recent median time to first token; unknown last), uptime (recent success rate;
 * unknown counts as healthy), balanced (the sum of the price relative to the cheapest option, the
 * latency relative to the fastest known one (1 when unknown), and ten times the failure rate).
 */
export function orderedOptions(routes: ModelRoutes, strategy: RoutingStrategy, health: ProviderHealth, now = Date.now()): readonly RouteOption[] {
  const options = routes.options;
  if (options.length <= 1) return options;
  const cached = routes.order;
  if (cached && cached.strategy === strategy && now - cached.at < ORDER_TTL_MS) return cached.options;
  const scores = options.map((o) => health.score(o.provider));
  const cost = new Array<number>(options.length);
  const minPrice = Math.min(...options.map((o) => (o.price > 0 ? o.price : Infinity)));
  const known = scores.map((s) => s.p50TtftMs).filter((v): v is number => v !== null && v > 0);
  const minTtft = known.length ? Math.min(...known) : null;
  for (let i = 0; i < options.length; i++) {
    const o = options[i]!;
    const s = scores[i]!;
    switch (strategy) {
      case 'price':
        cost[i] = o.price > 0 ? o.price : Infinity;
        break;
      case 'latency':
        cost[i] = s.p50TtftMs ?? Infinity;
        break;
      case 'uptime':
        cost[i] = -(s.successRate ?? 1);
        break;
      default: {
        const price = o.price > 0 && Number.isFinite(minPrice) ? o.price / minPrice : 1;
        const latency = s.p50TtftMs !== null && minTtft ? s.p50TtftMs / minTtft : 1;
        cost[i] = price + latency + 10 * (1 - (s.successRate ?? 1));
      }
    }
  }
  const ordered = options.map((o, i) => ({ o, c: cost[i]!, i })).sort((a, b) => a.c - b.c || a.i - b.i).map((x) => x.o);
  routes.order = { strategy, at: now, options: ordered };
  return ordered;
}

// ---------------------------------------------------------------------------------------------
// Sticky sessions: weighted rendezvous hashing
// ---------------------------------------------------------------------------------------------

/** A 32-bit hash of a string (FNV-1a with murmur3's finalizer), the same on every instance. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Weighted rendezvous score of a key for a session: the highest wins (-w / ln(u), u in (0, 1)). */
export function rendezvousScore(session: string, ref: string, weight: number): number {
  const u = (hash32(`${session}\u0000${ref}`) + 0.5) / 4294967296;
  return weight <= 0 ? -Infinity : -weight / Math.log(u);
}

/** The session id a call carries for sticky routing, if any: x-session-id, else prompt_cache_key, else metadata.user_id. */
export function sessionOf(header: unknown, body: Record<string, unknown>): string | null {
  const h = Array.isArray(header) ? header[0] : header;
  if (typeof h === 'string' && h.length > 0) return h.slice(0, 256);
  const key = body.prompt_cache_key;
  if (typeof key === 'string' && key.length > 0) return key.slice(0, 256);
  const metadata = body.metadata;
  if (metadata && typeof metadata === 'object') {
    const user = (metadata as Record<string, unknown>).user_id;
    if (typeof user === 'string' && user.length > 0) return user.slice(0, 256);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Request-side settings
// ---------------------------------------------------------------------------------------------

export const MAX_REQUEST_MODELS = 5;

/**
 * The body's `models` (OpenRouter's fallback list), checked: an array of 1 to 5 model names.
 * Null when absent. The field is for the gateway: callers remove it before the body goes upstream.
 */
export function requestModels(body: Record<string, unknown>): string[] | null {
  const models = body.models;
  if (models === undefined || models === null) return null;
  if (!Array.isArray(models) || models.length === 0 || models.length > MAX_REQUEST_MODELS) {
    throw badRequest(`models must be an array of 1 to ${MAX_REQUEST_MODELS} model names, tried in order after model when it fails`, 'invalid_models');
  }
  for (const [i, m] of models.entries()) {
    if (typeof m !== 'string' || m.trim() === '') throw badRequest(`models[${i}] must be a non-empty model name`, 'invalid_models');
    if (m.length > 200) throw badRequest(`models[${i}] must be at most 200 characters`, 'invalid_models');
  }
  return models as string[];
}

/** The body without `models` (a copy only when it has one). */
export function withoutModels<T extends Record<string, unknown>>(body: T): T {
  if (!('models' in body)) return body;
  const copy = { ...body };
  delete copy.models;
  return copy;
}

/** The models a call tries, in order, without repeats: `model`, then `models`, else the project's fallbacks for `model`. */
export function modelChain(model: string, models: string[] | null, routing: ProjectRouting, projectFallbacks: boolean): readonly string[] {
  const rest = models ?? (projectFallbacks ? routing.fallbacks[model] : undefined);
  if (!rest || rest.length === 0) return [model];
  const chain = [model];
  for (const m of rest) if (!chain.includes(m)) chain.push(m);
  return chain;
}

/** Whether `x-gateway-no-fallback` turns fallback off for this call. */
export const noFallback = (header: unknown) => header === 'true' || header === '1';

// ---------------------------------------------------------------------------------------------
// The plan of one call
// ---------------------------------------------------------------------------------------------

/** An error that refuses one candidate (the next may serve): the gateway's 4xx answers before going upstream. */
export function isRefusal(err: unknown): boolean {
  if (err instanceof GatewayError) return err.status >= 400 && err.status < 500 && err.status !== 429;
  return err instanceof DomainError && err.kind !== 'too_many_requests';
}

/**
 * Yields one call's candidates in order: the sticky pick first (when the call has a session and
 * the first model has several keys), then the first model's options in strategy order with their
 * keys by weighted choice (own keys before the operator's), then each fallback model's. Keys the
 * health says are unavailable are passed over; when nothing else is left and nothing was tried,
 * the first of them is tried anyway (better a probe than a refusal).
 */
export class CallPlan {
  private modelIndex = 1;
  private options: readonly RouteOption[];
  private optionIndex = 0;
  private tried: KeyChoice[] | null = null;
  private skipped: KeyChoice[] | null = null;
  private yielded = 0;
  private sticky: KeyChoice | null = null;
  /** Fallback models that could not be routed (the first such error, for the final answer when nothing else was tried). */
  routingError: unknown = null;

  constructor(
    private readonly health: ProviderHealth,
    private readonly strategy: RoutingStrategy,
    private readonly first: ModelRoutes,
    private readonly models: readonly string[],
    private readonly load: (model: string) => Promise<ModelRoutes>,
    session: string | null,
    private readonly random: () => number = Math.random,
  ) {
    this.options = orderedOptions(first, strategy, health);
    if (session !== null && (this.options.length > 1 || this.options[0]!.tiers.some((t) => t.length > 1))) this.sticky = this.stickyPick(session);
  }

  private stickyPick(session: string): KeyChoice | null {
    let best: KeyChoice | null = null;
    let bestScore = -Infinity;
    for (const option of this.options) {
      for (const tier of option.tiers) {
        let any = false;
        for (const key of tier) {
          if (!this.open(option, key)) continue;
          any = true;
          const score = rendezvousScore(session, key.ref, key.weight);
          if (score > bestScore) {
            bestScore = score;
            best = key;
          }
        }
        // The first tier with an available key is the option's: own keys before the operator's.
        if (any) break;
      }
    }
    return best;
  }

  /** Whether a key may be tried now, without taking a half-open circuit's one probe (health.peek when it has it). */
  private open(option: RouteOption, key: KeyChoice): boolean {
    return this.health.peek ? this.health.peek(option.provider, key.ref) : this.health.available(option.provider, key.ref);
  }

  /** The key about to be tried: health.available takes the probe slot of a half-open circuit (false: someone else probes). */
  private take(key: KeyChoice): boolean {
    return !this.health.peek || this.health.available(key.option.provider, key.ref);
  }

  private wasTried(key: KeyChoice): boolean {
    return this.tried !== null && this.tried.includes(key);
  }

  private mark(key: KeyChoice): KeyChoice {
    (this.tried ??= []).push(key);
    this.yielded++;
    return key;
  }

  /** A weighted choice among the option's available untried keys, tier by tier; null when none is left. */
  private pick(option: RouteOption): KeyChoice | null {
    for (const tier of option.tiers) {
      if (tier.length === 1) {
        const key = tier[0]!;
        if (this.wasTried(key) || this.skipped?.includes(key)) continue;
        if (this.open(option, key)) return key;
        (this.skipped ??= []).push(key);
        continue;
      }
      let total = 0;
      const open: KeyChoice[] = [];
      for (const key of tier) {
        if (this.wasTried(key) || this.skipped?.includes(key)) continue;
        if (!this.open(option, key)) {
          (this.skipped ??= []).push(key);
          continue;
        }
        open.push(key);
        total += key.weight;
      }
      if (open.length === 0) continue;
      if (total <= 0) return open[0]!;
      let r = this.random() * total;
      for (const key of open) {
        r -= key.weight;
        if (r < 0) return key;
      }
      return open[open.length - 1]!;
    }
    return null;
  }

  /**
   * After a failure of the provider rather than the key (no answer, a timeout, a 5xx): the option's
   * other keys calling the same endpoint are passed over (they would meet the same outage); keys
   * with their own endpoint (another Azure resource, say) stay in the plan.
   */
  passOver(key: KeyChoice, url: string): void {
    for (const tier of key.option.tiers) {
      for (const k of tier) if (k !== key && !this.wasTried(k) && (k.target === null || k.target.url === url)) (this.tried ??= []).push(k);
    }
  }

  /** The next candidate, or null when the plan is exhausted. */
  async next(): Promise<KeyChoice | null> {
    if (this.sticky) {
      const key = this.sticky;
      this.sticky = null;
      if (this.take(key)) return this.mark(key);
      (this.skipped ??= []).push(key);
    }
    for (;;) {
      while (this.optionIndex < this.options.length) {
        const key = this.pick(this.options[this.optionIndex]!);
        if (!key) {
          this.optionIndex++;
          continue;
        }
        if (this.take(key)) return this.mark(key);
        (this.skipped ??= []).push(key);
      }
      if (this.modelIndex >= this.models.length) break;
      const model = this.models[this.modelIndex++]!;
      try {
        this.options = orderedOptions(await this.load(model), this.strategy, this.health);
        this.optionIndex = 0;
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        this.routingError ??= err;
      }
    }
    if (this.yielded === 0 && this.skipped?.length) return this.mark(this.skipped.shift()!);
    return null;
  }
}
