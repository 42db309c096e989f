/**
 * The model catalog: which models the gateway routes and what they cost.
 *
 * Prices are the providers' list prices for standard (non-batch, base-tier) usage in US dollars per
 * million tokens, written as exact decimal strings and turned into integer nano-dollars per million
 * tokens (bigint) once, here. Operators update this table when providers change prices.
 *
 * Cost of one request (exact, integer arithmetic):
 *   numerator = freshInput × inputPrice + cacheRead × cachedInputPrice + cacheWrite × cacheWritePrice
 *             + output × outputPrice
 *   (prices in nano-dollars per million tokens; freshInput = input − cacheRead − cacheWrite),
 *   cost = numerator / 1,000,000 rounded half up to a whole nano-dollar, once per request. A
 *   nano-dollar is 1e-9 USD, so the rounding is at most half a nano-dollar per request.
 *
 * Cache writes (Anthropic's cache_creation_input_tokens) cost 1.25× the input price on Anthropic;
 * a model without a cache-write price bills them as input. Long prompts: some models price the
 * whole request higher once its prompt passes a size (Gemini 2.5 Pro above 200k input tokens,
 * Qwen's tiers); `tiers` lists those prices, and the tier is chosen by the request's input tokens.
 */
import { decimalToNanos } from './money.js';

export const PROVIDERS = ['openai', 'anthropic', 'google', 'bedrock', 'azure', 'alibaba'] as const;
export type CatalogProvider = (typeof PROVIDERS)[number];
/** Where a call can go: a catalog provider, or an organization's custom OpenAI-compatible server. */
export type RouteProvider = CatalogProvider | 'custom';

export const PROVIDER_LABELS: Record<RouteProvider, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  google: 'Google',
  bedrock: 'AWS Bedrock',
  azure: 'Azure OpenAI',
  alibaba: 'Alibaba Qwen',
  custom: 'Custom',
};

/** Other spellings accepted as the `provider/` prefix of a model id. */
const PROVIDER_ALIASES: Record<string, CatalogProvider> = {
  gemini: 'google',
  vertex: 'google',
  'vertex-ai': 'google',
  aws: 'bedrock',
  'azure-openai': 'azure',
  qwen: 'alibaba',
  dashscope: 'alibaba',
};

export interface ModelInfo {
  provider: CatalogProvider;
  /** The id sent upstream (and accepted from clients, bare or as `provider/id`). */
  id: string;
  /** Other names clients may use; they route to `id`. */
  aliases?: string[];
  /** US dollars per million tokens, exact decimals (cacheWrite defaults to input). */
  price: Prices;
  /** Higher prices for the whole request once its input tokens exceed `above`, ascending. */
  tiers?: (Prices & { above: number })[];
  contextTokens: number;
  maxOutputTokens: number;
  streaming: boolean;
  /** What the model does: 'chat' (chat completions, messages, responses) or 'embedding' (/v1/embeddings). Default chat. */
  kind?: ModelKind;
  /** Embedding models: the vector length returned by default. */
  dimensions?: number;
}

export type ModelKind = 'chat' | 'embedding';

/** A catalog entry's kind ('chat' unless it says otherwise). */
export const modelKind = (info: Pick<ModelInfo, 'kind'>): ModelKind => info.kind ?? 'chat';

export interface Prices {
  input: string;
  cachedInput: string;
  cacheWrite?: string;
  output: string;
}

/** Integer nano-dollars per million tokens. */
export interface NanoPrices {
  input: bigint;
  cachedInput: bigint;
  cacheWrite: bigint;
  output: bigint;
}

export interface PricedModel extends ModelInfo {
  /** Base prices, plus the long-prompt tiers (ascending by `above`). */
  nanosPerMTok: NanoPrices & { tiers?: (NanoPrices & { above: number })[] };
}

const m = (
  provider: CatalogProvider,
  id: string,
  input: string,
  cachedInput: string,
  output: string,
  contextTokens: number,
  maxOutputTokens: number,
  aliases?: string[],
  more: { cacheWrite?: string; tiers?: ModelInfo['tiers'] } = {},
): ModelInfo => ({
  provider,
  id,
  price: { input, cachedInput, ...(more.cacheWrite ? { cacheWrite: more.cacheWrite } : {}), output },
  contextTokens,
  maxOutputTokens,
  streaming: true,
  ...(aliases ? { aliases } : {}),
  ...(more.tiers ? { tiers: more.tiers } : {}),
});
/** An embedding model: priced per million input tokens (no output, no cache), never streamed. */
const embedding = (provider: CatalogProvider, id: string, input: string, contextTokens: number, dimensions: number): ModelInfo => ({
  provider,
  id,
  price: { input, cachedInput: input, output: '0' },
  contextTokens,
  maxOutputTokens: 0,
  streaming: false,
  kind: 'embedding',
  dimensions,
});
/** Alibaba bills cached input (implicit cache hits) at 20% of the tier's input price. */
const qwenTier = (above: number, input: string, cachedInput: string, output: string) => ({ above, input, cachedInput, output });

/** Order matters for bare names: the first provider listing a model id serves it. */
const MODELS: ModelInfo[] = [
  // OpenAI
  m('openai', 'gpt-5', '1.25', '0.125', '10', 400_000, 128_000),
  m('openai', 'gpt-5-mini', '0.25', '0.025', '2', 400_000, 128_000),
  m('openai', 'gpt-5-nano', '0.05', '0.005', '0.4', 400_000, 128_000),
  m('openai', 'gpt-4.1', '2', '0.5', '8', 1_047_576, 32_768),
  m('openai', 'gpt-4.1-mini', '0.4', '0.1', '1.6', 1_047_576, 32_768),
  m('openai', 'gpt-4.1-nano', '0.1', '0.025', '0.4', 1_047_576, 32_768),
  m('openai', 'gpt-4o', '2.5', '1.25', '10', 128_000, 16_384),
  m('openai', 'gpt-4o-mini', '0.15', '0.075', '0.6', 128_000, 16_384),
  m('openai', 'o3', '2', '0.5', '8', 200_000, 100_000),
  m('openai', 'o4-mini', '1.1', '0.275', '4.4', 200_000, 100_000),
  m('openai', 'o3-mini', '1.1', '0.55', '4.4', 200_000, 100_000),
  // Anthropic (cache reads at 10% of input; 5-minute cache writes at 125% of input)
  m('anthropic', 'claude-opus-4-5-20251101', '5', '0.5', '25', 200_000, 64_000, ['claude-opus-4-5'], { cacheWrite: '6.25' }),
  m('anthropic', 'claude-opus-4-1-20250805', '15', '1.5', '75', 200_000, 32_000, ['claude-opus-4-1'], { cacheWrite: '18.75' }),
  m('anthropic', 'claude-sonnet-4-5-20250929', '3', '0.3', '15', 200_000, 64_000, ['claude-sonnet-4-5'], { cacheWrite: '3.75' }),
  m('anthropic', 'claude-sonnet-4-20250514', '3', '0.3', '15', 200_000, 64_000, ['claude-sonnet-4-0'], { cacheWrite: '3.75' }),
  m('anthropic', 'claude-haiku-4-5-20251001', '1', '0.1', '5', 200_000, 64_000, ['claude-haiku-4-5'], { cacheWrite: '1.25' }),
  m('anthropic', 'claude-3-5-haiku-20241022', '0.8', '0.08', '4', 200_000, 8_192, ['claude-3-5-haiku-latest'], { cacheWrite: '1' }),
  // Google Gemini (AI Studio or Vertex AI); 2.5 Pro costs more for prompts over 200k tokens
  m('google', 'gemini-2.5-pro', '1.25', '0.125', '10', 1_048_576, 65_536, undefined, { tiers: [{ above: 200_000, input: '2.5', cachedInput: '0.25', output: '15' }] }),
  m('google', 'gemini-2.5-flash', '0.3', '0.03', '2.5', 1_048_576, 65_536),
  m('google', 'gemini-2.5-flash-lite', '0.1', '0.01', '0.4', 1_048_576, 65_536),
  m('google', 'gemini-2.0-flash', '0.1', '0.025', '0.4', 1_048_576, 8_192),
  // AWS Bedrock: Claude through InvokeModel (called through an inference profile, `global.` by
  // default, at Anthropic's prices), the others through the OpenAI-compatible endpoint
  m('bedrock', 'anthropic.claude-sonnet-4-5-20250929-v1:0', '3', '0.3', '15', 200_000, 64_000, ['claude-sonnet-4-5'], { cacheWrite: '3.75' }),
  m('bedrock', 'anthropic.claude-haiku-4-5-20251001-v1:0', '1', '0.1', '5', 200_000, 64_000, ['claude-haiku-4-5'], { cacheWrite: '1.25' }),
  m('bedrock', 'anthropic.claude-opus-4-5-20251101-v1:0', '5', '0.5', '25', 200_000, 64_000, ['claude-opus-4-5'], { cacheWrite: '6.25' }),
  m('bedrock', 'anthropic.claude-sonnet-4-20250514-v1:0', '3', '0.3', '15', 200_000, 64_000, ['claude-sonnet-4-0'], { cacheWrite: '3.75' }),
  m('bedrock', 'openai.gpt-oss-120b-1:0', '0.15', '0.15', '0.6', 128_000, 32_768),
  m('bedrock', 'openai.gpt-oss-20b-1:0', '0.07', '0.07', '0.3', 128_000, 32_768),
  // Azure OpenAI (global standard deployments; the deployment is named after the model)
  m('azure', 'gpt-4.1', '2', '0.5', '8', 1_047_576, 32_768),
  m('azure', 'gpt-4.1-mini', '0.4', '0.1', '1.6', 1_047_576, 32_768),
  m('azure', 'gpt-4o', '2.5', '1.25', '10', 128_000, 16_384),
  m('azure', 'gpt-4o-mini', '0.15', '0.075', '0.6', 128_000, 16_384),
  m('azure', 'gpt-5-mini', '0.25', '0.025', '2', 400_000, 128_000),
  m('azure', 'o4-mini', '1.1', '0.275', '4.4', 200_000, 100_000),
  // Alibaba Cloud Model Studio, international (Singapore) prices; cached input at 20% of input;
  // tiered by the request's input tokens
  m('alibaba', 'qwen3-max', '1.2', '0.24', '6', 262_144, 65_536, undefined, { tiers: [qwenTier(32_000, '2.4', '0.48', '12'), qwenTier(128_000, '3', '0.6', '15')] }),
  m('alibaba', 'qwen-max', '1.6', '0.32', '6.4', 32_768, 8_192),
  m('alibaba', 'qwen-plus', '0.4', '0.08', '1.2', 1_000_000, 32_768, undefined, { tiers: [qwenTier(256_000, '1.2', '0.24', '3.6')] }),
  m('alibaba', 'qwen-flash', '0.05', '0.01', '0.4', 1_000_000, 32_768, undefined, { tiers: [qwenTier(256_000, '0.25', '0.05', '2')] }),
  m('alibaba', 'qwen-turbo', '0.05', '0.01', '0.2', 1_000_000, 16_384),
  m('alibaba', 'qwen3-coder-plus', '1', '0.2', '5', 1_000_000, 65_536, undefined, {
    tiers: [qwenTier(32_000, '1.8', '0.36', '9'), qwenTier(128_000, '3', '0.6', '15'), qwenTier(256_000, '6', '1.2', '60')],
  }),
  // Embedding models (POST /v1/embeddings), list prices per million input tokens
  embedding('openai', 'text-embedding-3-small', '0.02', 8_191, 1536),
  embedding('openai', 'text-embedding-3-large', '0.13', 8_191, 3072),
  embedding('openai', 'text-embedding-ada-002', '0.1', 8_191, 1536),
  embedding('azure', 'text-embedding-3-small', '0.02', 8_191, 1536),
  embedding('azure', 'text-embedding-3-large', '0.13', 8_191, 3072),
  embedding('azure', 'text-embedding-ada-002', '0.1', 8_191, 1536),
  embedding('google', 'gemini-embedding-001', '0.15', 2_048, 3072),
  // Singapore (international) price
  embedding('alibaba', 'text-embedding-v4', '0.07', 8_192, 1024),
];

function nanoPrices(p: Prices): NanoPrices {
  return {
    input: decimalToNanos(p.input),
    cachedInput: decimalToNanos(p.cachedInput),
    cacheWrite: decimalToNanos(p.cacheWrite ?? p.input),
    output: decimalToNanos(p.output),
  };
}

function priced(info: ModelInfo): PricedModel {
  const tiers = info.tiers?.map((t) => ({ above: t.above, ...nanoPrices(t) })).sort((a, b) => a.above - b.above);
  return { ...info, nanosPerMTok: { ...nanoPrices(info.price), ...(tiers?.length ? { tiers } : {}) } };
}

export const MODEL_CATALOG: readonly PricedModel[] = MODELS.map(priced);

const byProvider = new Map<string, PricedModel>();
const byBareName = new Map<string, PricedModel>();
for (const model of MODEL_CATALOG) {
  for (const name of [model.id, ...(model.aliases ?? [])]) {
    byProvider.set(`${model.provider}/${name}`, model);
    if (!byBareName.has(name)) byBareName.set(name, model);
  }
}

export function findModel(provider: CatalogProvider, name: string): PricedModel | undefined {
  return byProvider.get(`${provider}/${name}`);
}

/** AWS Bedrock inference profile prefixes (`us.anthropic.claude-…`: cross-region inference). */
export const BEDROCK_PROFILES = ['global', 'us', 'eu', 'apac', 'jp', 'au', 'us-gov'] as const;

/** Splits `us.anthropic.claude-…` into its inference profile and model id (no profile: null). */
export function splitBedrockProfile(model: string): { profile: string | null; model: string } {
  const dot = model.indexOf('.');
  const head = dot > 0 ? model.slice(0, dot) : '';
  return (BEDROCK_PROFILES as readonly string[]).includes(head) ? { profile: head, model: model.slice(dot + 1) } : { profile: null, model };
}

/** A catalog model by its bare name or alias (the first provider listing it). */
export function findModelByName(name: string): PricedModel | undefined {
  return byBareName.get(name);
}

export function catalogProvider(prefix: string): CatalogProvider | undefined {
  const p = prefix.toLowerCase();
  return (PROVIDERS as readonly string[]).includes(p) ? (p as CatalogProvider) : PROVIDER_ALIASES[p];
}

/** Names a custom provider key may not take: they already mean a catalog provider. */
export function isReservedProviderName(name: string): boolean {
  return catalogProvider(name) !== undefined || name.toLowerCase() === 'custom';
}

export type ModelRoute =
  | { kind: 'catalog'; provider: CatalogProvider; model: string; entry: PricedModel | undefined }
  | { kind: 'custom'; name: string; model: string };

/**
 * Where a requested model goes. `provider/model` (the provider or one of its aliases), a bare catalog
 * name, or `<custom provider name>/<model>` (custom names are resolved by the caller, who knows the
 * organization's keys). Returns null for a bare name the catalog does not know.
 */
export function routeModel(requested: string, isCustomName: (name: string) => boolean = () => false): ModelRoute | null {
  const slash = requested.indexOf('/');
  if (slash > 0) {
    const prefix = requested.slice(0, slash);
    const rest = requested.slice(slash + 1);
    if (rest.length === 0) return null;
    if (isCustomName(prefix)) return { kind: 'custom', name: prefix, model: rest };
    const provider = catalogProvider(prefix);
    if (provider) {
      const entry = findModel(provider, rest);
      if (!entry && provider === 'bedrock') {
        // An explicit inference profile (`bedrock/us.anthropic.claude-…`) is kept, and priced as its model.
        const { profile, model } = splitBedrockProfile(rest);
        const profiled = profile ? findModel('bedrock', model) : undefined;
        if (profiled) return { kind: 'catalog', provider, model: `${profile}.${profiled.id}`, entry: profiled };
      }
      return { kind: 'catalog', provider, model: entry?.id ?? rest, entry };
    }
  }
  const entry = byBareName.get(requested);
  return entry ? { kind: 'catalog', provider: entry.provider, model: entry.id, entry } : null;
}

export interface TokenUsage {
  /** Every prompt token, cached ones included (OpenAI's prompt_tokens). */
  inputTokens: number;
  outputTokens: number;
  /** The part of inputTokens read from the provider's prompt cache. */
  cachedTokens: number;
  /** The part of inputTokens written to the provider's prompt cache (Anthropic); 0 when absent. */
  cacheWriteTokens?: number;
}

const PER_MILLION = 1_000_000n;

/** The prices that apply to a request with this many input tokens (its tier, or the base prices). */
export function pricesFor(prices: PricedModel['nanosPerMTok'], inputTokens: number): NanoPrices {
  let chosen: NanoPrices = prices;
  for (const tier of prices.tiers ?? []) if (inputTokens > tier.above) chosen = tier;
  return chosen;
}

/** Exact cost in integer nano-dollars, rounded half up once per request (see the header). */
export function costNanos(prices: PricedModel['nanosPerMTok'], usage: TokenUsage): bigint {
  const inputTokens = Math.max(0, usage.inputTokens);
  const p = pricesFor(prices, inputTokens);
  const cached = Math.max(0, Math.min(usage.cachedTokens, inputTokens));
  const written = Math.max(0, Math.min(usage.cacheWriteTokens ?? 0, inputTokens - cached));
  const fresh = BigInt(inputTokens - cached - written);
  const output = BigInt(Math.max(0, usage.outputTokens));
  const numerator = fresh * p.input + BigInt(cached) * p.cachedInput + BigInt(written) * p.cacheWrite + output * p.output;
  return (numerator + PER_MILLION / 2n) / PER_MILLION;
}

/** Kinds of organization provider keys, and the catalog provider each one serves. */
export const PROVIDER_KEY_KINDS = ['openai', 'anthropic', 'google', 'vertex', 'bedrock', 'azure', 'alibaba', 'custom'] as const;
export type ProviderKeyKind = (typeof PROVIDER_KEY_KINDS)[number];
export const PROVIDER_KEY_SERVES: Record<ProviderKeyKind, RouteProvider> = {
  openai: 'openai',
  anthropic: 'anthropic',
  google: 'google',
  vertex: 'google',
  bedrock: 'bedrock',
  azure: 'azure',
  alibaba: 'alibaba',
  custom: 'custom',
};
export const PROVIDER_KEY_LABELS: Record<ProviderKeyKind, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  google: 'Google AI Studio',
  vertex: 'Google Vertex AI (service account JSON)',
  bedrock: 'AWS Bedrock (API key or IAM access key)',
  azure: 'Azure OpenAI',
  alibaba: 'Alibaba Qwen (Model Studio)',
  custom: 'Custom OpenAI-compatible',
};
/** Alibaba Model Studio regions and their OpenAI-compatible endpoints. */
export const ALIBABA_REGIONS = {
  intl: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
  us: 'https://dashscope-us.aliyuncs.com/compatible-mode/v1',
  cn: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
} as const;
export type AlibabaRegion = keyof typeof ALIBABA_REGIONS;
