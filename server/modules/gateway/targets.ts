/**
 * Who pays and where the call goes. The project's mode decides between the organization's own
 * provider keys (not charged; cost still computed) and the operator's keys from the environment
 * (credits pay); each provider's URL and header rules live here, the wire protocol in upstream/.
 */
import { ALIBABA_REGIONS, findModelByName, PROVIDER_KEY_SERVES, PROVIDER_LABELS, type CatalogProvider, type ModelRoute, type PricedModel, type ProviderKeyKind, type RouteProvider } from '../../../shared/models.js';
import type { GatewayConfig } from '../../config.js';
import { badRequest, modelNotFound } from './errors.js';
import { ANTHROPIC_VERSION, anthropicAdapter } from './upstream/anthropic.js';
import { bedrockAnthropicAdapter, bedrockModelId, iamCredentials, isBedrockAnthropic, signBedrockCall } from './upstream/bedrock.js';
import { openAiCompatible } from './upstream/openai.js';
import type { ProtocolAdapter } from './upstream/types.js';
import type { VertexTokens } from './vertex.js';

export type ProjectMode = 'credits' | 'provider-keys' | 'hybrid';
export type PaidBy = 'credits' | 'provider_key';

/** An organization's active provider key, decrypted (held only in memory). */
export interface ProviderCredential {
  id: string;
  kind: ProviderKeyKind;
  name: string;
  baseUrl: string | null;
  options: Record<string, unknown>;
  secret: string;
  /** Share of the calls among the keys of one provider (key pools, issue #11); absent: 1. */
  weight?: number;
  /** The operator's keys only (id "operator"): which key of the provider's pool in the environment. */
  operatorIndex?: number;
}

export interface Target {
  /** For logs and analytics: the catalog provider, or `custom`. */
  provider: RouteProvider;
  /** For logs: the catalog id, or `<custom name>/<model>`. */
  model: string;
  upstreamModel: string;
  url: string;
  /** Where streaming calls go, and with which headers, when those differ (Bedrock's invoke-with-response-stream). */
  streamUrl?: string;
  streamHeaders?: Record<string, string>;
  /** Where POST /v1/embeddings goes (OpenAI's embeddings shape); absent when the provider has no such endpoint here. */
  embeddingsUrl?: string;
  headers: Record<string, string>;
  /** Per-call request signing (Bedrock with an IAM access key): the headers to send for this URL and body. */
  sign?: (url: string, headers: Record<string, string>, payload: string) => Record<string, string>;
  adapter: ProtocolAdapter;
  paidBy: PaidBy;
  providerKeyId: string | null;
  entry: PricedModel | undefined;
  label: string;
  /** False when the target holds something short-lived (a Vertex access token). */
  reusable: boolean;
}

const adapters = new Map<string, ProtocolAdapter>();
function openAiAdapter(label: string, streamOptions = true): ProtocolAdapter {
  const key = `${label}:${streamOptions}`;
  let adapter = adapters.get(key);
  if (!adapter) adapters.set(key, (adapter = openAiCompatible(label, { streamOptions })));
  return adapter;
}

const trim = (url: string) => url.replace(/\/+$/, '');

/**
 * The organization's keys that may serve `model` at a catalog provider, oldest first (a key pool
 * when several). Azure: the keys deployed for this model and those without a deployment set; when
 * none, the first Azure key (its deployment is named after the model).
 */
export function ownCredentials(creds: ProviderCredential[], provider: CatalogProvider, model: string): ProviderCredential[] {
  const serving = creds.filter((c) => PROVIDER_KEY_SERVES[c.kind] === provider);
  if (provider !== 'azure' || serving.length <= 1) return serving;
  const fit = serving.filter((c) => c.options.deployment === model || c.options.deployment == null || c.options.deployment === '');
  return fit.length > 0 ? fit : serving.slice(0, 1);
}

const operatorPools = new WeakMap<GatewayConfig, Map<CatalogProvider, ProviderCredential[]>>();

/** The operator's credentials for a provider (its key pool from the environment), possibly none. */
export function operatorCredentials(config: GatewayConfig, provider: CatalogProvider): ProviderCredential[] {
  let pools = operatorPools.get(config);
  if (!pools) operatorPools.set(config, (pools = new Map()));
  let pool = pools.get(provider);
  if (pool) return pool;
  const op = config[provider];
  const keys = op.apiKeys ?? (op.apiKey ? [op.apiKey] : []);
  const kind: ProviderKeyKind = provider;
  const options: Record<string, unknown> =
    provider === 'bedrock' ? { region: config.bedrock.region, inferenceProfile: config.bedrock.inferenceProfile } : provider === 'azure' ? { resource: config.azure.resource, apiVersion: config.azure.apiVersion } : provider === 'alibaba' ? { region: 'intl' } : {};
  pool = keys.map((secret, i) => ({ id: 'operator', kind, name: provider, baseUrl: null, options, secret, operatorIndex: i }));
  pools.set(provider, pool);
  return pool;
}

async function endpoint(
  config: GatewayConfig,
  cred: ProviderCredential,
  model: string,
  vertex: VertexTokens,
): Promise<Pick<Target, 'url' | 'streamUrl' | 'streamHeaders' | 'embeddingsUrl' | 'headers' | 'sign' | 'upstreamModel' | 'adapter'>> {
  const bearer = { authorization: `Bearer ${cred.secret}` };
  switch (cred.kind) {
    case 'openai': {
      const base = trim(config.openai.baseUrl ?? 'https://api.openai.com/v1');
      return { url: `${base}/chat/completions`, embeddingsUrl: `${base}/embeddings`, headers: bearer, upstreamModel: model, adapter: openAiAdapter('openai') };
    }
    case 'anthropic':
      return {
        url: `${trim(config.anthropic.baseUrl ?? 'https://api.anthropic.com')}/v1/messages`,
        headers: { 'x-api-key': cred.secret, 'anthropic-version': ANTHROPIC_VERSION },
        upstreamModel: model,
        adapter: anthropicAdapter,
      };
    case 'google':
      return {
        url: `${trim(config.google.baseUrl ?? 'https://generativelanguage.googleapis.com/v1beta/openai')}/chat/completions`,
        embeddingsUrl: `${trim(config.google.baseUrl ?? 'https://generativelanguage.googleapis.com/v1beta/openai')}/embeddings`,
        headers: bearer,
        upstreamModel: model,
        adapter: openAiAdapter('google'),
      };
    case 'vertex': {
      const location = String(cred.options.location ?? 'us-central1');
      const project = String(cred.options.projectId ?? '');
      const host = config.vertexBaseUrl ?? `https://${location === 'global' ? '' : `${location}-`}aiplatform.googleapis.com`;
      const token = await vertex.accessToken(cred.id, cred.secret);
      return {
        url: `${trim(host)}/v1/projects/${encodeURIComponent(project)}/locations/${encodeURIComponent(location)}/endpoints/openapi/chat/completions`,
        headers: { authorization: `Bearer ${token}` },
        upstreamModel: model.startsWith('google/') ? model : `google/${model}`,
        adapter: openAiAdapter('vertex'),
      };
    }
    case 'bedrock': {
      const region = String(cred.options.region ?? config.bedrock.region);
      const iam = iamCredentials(cred.secret);
      if (isBedrockAnthropic(model)) {
        const upstreamModel = bedrockModelId(model, String(cred.options.inferenceProfile ?? config.bedrock.inferenceProfile));
        const base = `${trim(config.bedrock.runtimeBaseUrl ?? `https://bedrock-runtime.${region}.amazonaws.com`)}/model/${encodeURIComponent(upstreamModel)}`;
        // A Bedrock API key is a bearer token; an IAM access key signs every call (SigV4).
        const auth: Record<string, string> = iam ? {} : bearer;
        // Streaming: HTTP Accept is the event-stream framing, x-amzn-bedrock-accept the model's JSON inside it.
        return {
          url: `${base}/invoke`,
          headers: { ...auth, accept: 'application/json' },
          streamUrl: `${base}/invoke-with-response-stream`,
          streamHeaders: { ...auth, accept: 'application/vnd.amazon.eventstream', 'x-amzn-bedrock-accept': 'application/json' },
          ...(iam ? { sign: (url: string, headers: Record<string, string>, payload: string) => signBedrockCall(url, headers, payload, iam, region) } : {}),
          upstreamModel,
          adapter: bedrockAnthropicAdapter,
        };
      }
      if (iam) throw badRequest('an IAM access key serves Claude models on Bedrock; other Bedrock models need a Bedrock API key', 'provider_key_unsupported');
      return {
        url: `${trim(config.bedrock.baseUrl ?? `https://bedrock-mantle.${region}.api.aws/v1`)}/chat/completions`,
        headers: bearer,
        upstreamModel: model,
        adapter: openAiAdapter('bedrock'),
      };
    }
    case 'azure': {
      const resource = String(cred.options.resource ?? '');
      if (!config.azure.baseUrl && !resource) throw badRequest('the Azure OpenAI key has no resource configured');
      const deployment = String(cred.options.deployment ?? model);
      const version = String(cred.options.apiVersion ?? config.azure.apiVersion);
      const base = trim(config.azure.baseUrl ?? `https://${resource}.openai.azure.com`);
      return {
        url: `${base}/openai/deployments/${encodeURIComponent(deployment)}/chat/completions?api-version=${encodeURIComponent(version)}`,
        embeddingsUrl: `${base}/openai/deployments/${encodeURIComponent(deployment)}/embeddings?api-version=${encodeURIComponent(version)}`,
        headers: { 'api-key': cred.secret },
        upstreamModel: model,
        adapter: openAiAdapter('azure'),
      };
    }
    case 'alibaba': {
      const region = (String(cred.options.region ?? 'intl') as keyof typeof ALIBABA_REGIONS) in ALIBABA_REGIONS ? (String(cred.options.region ?? 'intl') as keyof typeof ALIBABA_REGIONS) : 'intl';
      const base = trim(config.alibaba.baseUrl ?? ALIBABA_REGIONS[region]);
      return { url: `${base}/chat/completions`, embeddingsUrl: `${base}/embeddings`, headers: bearer, upstreamModel: model, adapter: openAiAdapter('alibaba') };
    }
    case 'custom':
      return { url: `${trim(cred.baseUrl ?? '')}/chat/completions`, embeddingsUrl: `${trim(cred.baseUrl ?? '')}/embeddings`, headers: bearer, upstreamModel: model, adapter: openAiAdapter(`custom provider "${cred.name}"`) };
  }
}

/** The target of a custom provider's model (an organization's OpenAI-compatible server; never charged). */
async function customTarget(config: GatewayConfig, mode: ProjectMode, route: Extract<ModelRoute, { kind: 'custom' }>, creds: ProviderCredential[], vertex: VertexTokens): Promise<Target> {
  if (mode === 'credits') throw badRequest(`this project pays with credits only; custom providers ("${route.name}") need project mode provider-keys or hybrid`, 'model_not_available');
  const cred = creds.find((c) => c.kind === 'custom' && c.name.toLowerCase() === route.name.toLowerCase())!;
  const ep = await endpoint(config, cred, route.model, vertex);
  // A custom server serving a catalog model name (e.g. a proxy) shows that model's price; it is never charged.
  const entry = findModelByName(route.model);
  return { ...ep, provider: 'custom', model: `${cred.name}/${route.model}`, paidBy: 'provider_key', providerKeyId: cred.id, entry, label: `custom provider "${cred.name}"`, reusable: true };
}

/** A catalog route's target through one credential (an organization's key, or one of the operator's). */
export async function catalogTarget(config: GatewayConfig, route: Extract<ModelRoute, { kind: 'catalog' }>, cred: ProviderCredential, vertex: VertexTokens): Promise<Target> {
  const { provider, model, entry } = route;
  const operator = cred.id === 'operator';
  const ep = await endpoint(config, cred, model, vertex);
  return { ...ep, provider, model, paidBy: operator ? 'credits' : 'provider_key', providerKeyId: operator ? null : cred.id, entry, label: provider, reusable: cred.kind !== 'vertex' };
}

/**
 * Which credentials may serve a catalog route for this project mode, in preference order: the
 * organization's own keys (not in credits mode), then the operator's (credits; not in provider-keys
 * mode, and only for catalog models). Throws when none may, saying why.
 */
export function routeCredentials(config: GatewayConfig, mode: ProjectMode, route: Extract<ModelRoute, { kind: 'catalog' }>, creds: ProviderCredential[]): { own: ProviderCredential[]; operator: ProviderCredential[] } {
  const { provider, model, entry } = route;
  const label = PROVIDER_LABELS[provider];
  const own = mode === 'credits' ? [] : ownCredentials(creds, provider, model);
  if (own.length === 0 && mode === 'provider-keys') {
    throw badRequest(`this project uses only the organization's provider keys, and there is no active ${label} key; add one under Provider keys`, 'provider_key_missing');
  }
  const operator = mode === 'provider-keys' || (own.length > 0 && !entry) ? [] : operatorCredentials(config, provider);
  if (own.length === 0) {
    if (operator.length === 0) throw badRequest(`${label} is not available with credits on this gateway; add your organization's own ${label} key under Provider keys`, 'model_not_available');
    if (!entry) throw modelNotFound(`model "${model}" is not in the ${label} catalog; credits pay only for catalog models (GET /v1/models lists them)`);
  }
  return { own, operator };
}

/** Decides the credential (and so who pays) for a routed model, or explains why it cannot be served: the first of routeCredentials. */
export async function resolveTarget(config: GatewayConfig, mode: ProjectMode, route: ModelRoute, creds: ProviderCredential[], vertex: VertexTokens): Promise<Target> {
  if (route.kind === 'custom') return customTarget(config, mode, route, creds, vertex);
  const { own, operator } = routeCredentials(config, mode, route, creds);
  return catalogTarget(config, route, own[0] ?? operator[0]!, vertex);
}

export { customTarget };
