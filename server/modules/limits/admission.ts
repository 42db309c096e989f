/**
 * Which spend limits a gateway call reserves against, what it may cost at most, and the 402 a call
 * gets when a limit cannot take it (issue #12; docs/billing.md).
 *
 * What counts: the balance and the organization's daily and monthly caps count credit-paid calls
 * only (they are about the organization's credits). An API key's spend limit and a member's budget
 * count every priced call, credit-paid or on the organization's own provider keys (the catalog
 * price is computed for both): they bound what a key or a person spends, whoever pays the provider.
 */
import { costNanos, pricesFor, type PricedModel } from '../../../shared/models.js';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import { PERIOD_WORDS, periodStart, type LimitPeriod } from '../../../shared/limits.js';
import { GatewayError } from '../gateway/errors.js';
import type { CallerContext } from '../gateway/runtime.js';
import type { RefusedLimit } from './commit.js';
import type { LimitSpec, Refusal } from './engine.js';

/** A limit setting as the gateway holds it (runtime KeyInfo / OrgInfo). */
export interface LimitSetting {
  nanos: bigint;
  period: LimitPeriod;
}

const EPOCH = new Date(0);
const money = (n: bigint) => formatDollars(nanosToDecimal(n));

function periodic(kind: LimitSpec['kind'], scope: string, orgId: string, setting: LimitSetting, label: string, alert: LimitSpec['alert'], now: number): LimitSpec {
  return { kind, scope, orgId, periodStart: periodStart(setting.period, now), period: setting.period, limit: setting.nanos, label: `${label} of ${money(setting.nanos)}`, alert };
}

/** The member budget that applies to a key's calls: the member's own, else the organization's default for developers. */
export function memberBudgetOf(caller: CallerContext): LimitSetting | null {
  const k = caller.key;
  if (!k.ownerId) return null;
  return k.memberBudget ?? (k.ownerRole === 'developer' ? caller.org.developerBudget : null);
}

/** The limits a call of this caller reserves against, most specific first (the balance last). */
export function limitSpecs(caller: CallerContext, paidBy: 'credits' | 'provider_key', now = Date.now()): LimitSpec[] {
  const { key, org } = caller;
  const specs: LimitSpec[] = [];
  if (key.spendLimit) {
    specs.push(periodic('key', `key:${key.apiKeyId}`, org.id, key.spendLimit, `this API key's ${PERIOD_WORDS[key.spendLimit.period]} spend limit`, { scope: 'apiKey', subjectId: key.apiKeyId }, now));
  }
  const budget = memberBudgetOf(caller);
  if (budget && key.ownerId) {
    specs.push(periodic('member', `member:${org.id}:${key.ownerId}`, org.id, budget, `the ${PERIOD_WORDS[budget.period]} budget of this key's member`, { scope: 'member', subjectId: key.ownerId }, now));
  }
  if (paidBy === 'credits') {
    if (org.dailySpendCap !== null) specs.push(periodic('day', `day:${org.id}`, org.id, { nanos: org.dailySpendCap, period: 'day' }, "the organization's daily spend cap", { scope: 'dailyCap', subjectId: org.id }, now));
    if (org.monthlySpendCap !== null) specs.push(periodic('month', `month:${org.id}`, org.id, { nanos: org.monthlySpendCap, period: 'month' }, "the organization's monthly spend cap", { scope: 'monthlyCap', subjectId: org.id }, now));
    specs.push({ kind: 'balance', scope: `balance:${org.id}`, orgId: org.id, periodStart: EPOCH, period: null, limit: null, label: "your organization's credit balance", alert: null });
  }
  return specs;
}

/** The organization's cap on calls in flight, or null. */
export function slotSpec(caller: CallerContext): LimitSpec | null {
  const cap = caller.org.maxConcurrentCalls;
  if (cap === null) return null;
  return { kind: 'slots', scope: `slots:${caller.org.id}`, orgId: caller.org.id, periodStart: EPOCH, period: null, limit: BigInt(cap), label: `the organization's cap of ${cap} calls in flight`, alert: null };
}

export interface Ask {
  promptChars: number;
  maxOutputTokens: number | null;
}

const estimate = (chars: number) => Math.ceil(chars / 4);
const outputOf = (entry: Pick<PricedModel, 'maxOutputTokens'>, ask: Ask) => ask.maxOutputTokens ?? entry.maxOutputTokens;

/** A call's largest possible cost: the prompt estimate at the input price plus the output asked for (or the model's limit). */
export function worstCost(entry: Pick<PricedModel, 'nanosPerMTok' | 'maxOutputTokens'>, ask: Ask): bigint {
  return costNanos(entry.nanosPerMTok, { inputTokens: estimate(ask.promptChars), outputTokens: outputOf(entry, ask), cachedTokens: 0 });
}

/** The largest max_tokens whose worst cost fits in `left` (0 when not even the prompt fits). */
export function maxTokensThatFit(entry: Pick<PricedModel, 'nanosPerMTok'>, ask: Ask, left: bigint): number {
  const inputTokens = estimate(ask.promptChars);
  const prompt = costNanos(entry.nanosPerMTok, { inputTokens, outputTokens: 0, cachedTokens: 0 });
  if (left <= prompt) return 0;
  const perMTok = pricesFor(entry.nanosPerMTok, inputTokens).output;
  if (perMTok <= 0n) return Number.MAX_SAFE_INTEGER;
  // costNanos rounds half up; staying a token under keeps the fit exact.
  const tokens = ((left - prompt) * 1_000_000n) / perMTok;
  return Number(tokens > 1n ? tokens - 1n : 0n);
}

/** A call refused by a spend limit: OpenAI's error shape plus `limit` (what refused it, what is left, when it resets, the max_tokens that fits). */
export class LimitRefusalError extends GatewayError {
  constructor(
    message: string,
    code: 'budget_exceeded' | 'insufficient_credits',
    readonly limit: { kind: LimitSpec['kind']; left: string; resetsAt: string | null; maxTokens: number | null },
  ) {
    super(402, message, 'insufficient_quota', code);
  }
  override toJSON() {
    const body = super.toJSON();
    return { error: { ...body.error, limit: this.limit } };
  }
}

/** The 402 for a refusal of `refusal`, for a call asking `ask` of model `entry`. */
export function refusalError(refusal: Refusal, entry: Pick<PricedModel, 'nanosPerMTok' | 'maxOutputTokens'>, ask: Ask): LimitRefusalError {
  const { spec, left, resetsAt } = refusal;
  const fit = maxTokensThatFit(entry, ask, left);
  const asked = outputOf(entry, ask);
  const cost = worstCost(entry, ask);
  const resets = resetsAt ? `; it resets at ${resetsAt.toISOString()}` : spec.kind === 'balance' ? '' : ' (a lifetime limit: it does not reset)';
  const fits = fit > 0 ? `; max_tokens ${fit} would fit` : '; not even the prompt fits';
  const what = spec.kind === 'balance' ? `${spec.label} cannot cover this call` : `${spec.label} is reached`;
  const message = `${what}: ${money(left)} left${resets}. This call may cost up to ${money(cost)} (max_tokens ${asked})${fits}.` +
    (spec.kind === 'balance' ? ' Buy credits or enable auto top-up in Billing.' : '');
  return new LimitRefusalError(message, spec.kind === 'balance' ? 'insufficient_credits' : 'budget_exceeded', {
    kind: spec.kind,
    left: nanosToDecimal(left),
    resetsAt: resetsAt?.toISOString() ?? null,
    maxTokens: fit > 0 ? fit : null,
  });
}

/** What the limit alerts learn of a refusal (null for the balance and the concurrency cap). */
export function refusedLimit(refusal: Refusal): RefusedLimit | null {
  const { spec } = refusal;
  if (!spec.alert || spec.limit === null) return null;
  return { orgId: spec.orgId, scope: spec.alert.scope, subjectId: spec.alert.subjectId, limitNanos: spec.limit, spentNanos: spec.limit - refusal.left, period: spec.period, periodStart: spec.periodStart };
}

/** The 429 for a call over the organization's cap on calls in flight. */
export function concurrencyRefusal(refusal: Refusal): GatewayError {
  return new GatewayError(429, `${refusal.spec.label} is reached; retry when one of them finished (raise the cap under Settings)`, 'rate_limit_error', 'concurrency_limit_exceeded', { 'retry-after': '1' });
}
