/**
 * GET /v1/models: the catalog models this key's project can call, as OpenAI lists models (with
 * their kind: chat or embedding); GET /v1/models/{id}: one of them (`provider/id`, a bare catalog
 * name or an alias), or 404 `model_not_found`.
 */
import { MODEL_CATALOG, modelKind, PROVIDER_KEY_SERVES, routeModel, type CatalogProvider, type PricedModel, type Prices } from '../../../shared/models.js';
import type { GatewayConfig } from '../../config.js';
import { modelNotFound } from './errors.js';
import type { CallerContext, GatewayRuntime } from './runtime.js';

const CREATED = Math.floor(Date.UTC(2025, 0, 1) / 1000);

const perMillion = (p: Prices) => ({
  input_per_million: p.input,
  cached_input_per_million: p.cachedInput,
  cache_write_per_million: p.cacheWrite ?? p.input,
  output_per_million: p.output,
});

function modelObject(m: PricedModel) {
  const kind = modelKind(m);
  return {
    id: `${m.provider}/${m.id}`,
    object: 'model',
    created: CREATED,
    owned_by: m.provider,
    kind,
    ...(m.aliases?.length ? { aliases: m.aliases.map((a) => `${m.provider}/${a}`) } : {}),
    context_window: m.contextTokens,
    ...(kind === 'embedding' ? { dimensions: m.dimensions ?? null } : { max_output_tokens: m.maxOutputTokens }),
    pricing:
      kind === 'embedding'
        ? { input_per_million: m.price.input, currency: 'USD' }
        : {
            ...perMillion(m.price),
            currency: 'USD',
            // The whole request is billed at a tier's prices once its input tokens exceed `above_input_tokens`.
            ...(m.tiers?.length ? { tiers: m.tiers.map((t) => ({ above_input_tokens: t.above, ...perMillion(t) })) } : {}),
          },
  };
}

async function usableProviders(runtime: GatewayRuntime, config: GatewayConfig, caller: CallerContext) {
  const creds = await runtime.providerCredentials(caller.org.id);
  const own = new Set(creds.map((c) => PROVIDER_KEY_SERVES[c.kind]));
  const mode = caller.project.mode;
  return { creds, usable: (provider: CatalogProvider) => (mode !== 'credits' && own.has(provider)) || (mode !== 'provider-keys' && !!config[provider].apiKey) };
}

export async function listModels(runtime: GatewayRuntime, config: GatewayConfig, authorization: string | undefined) {
  const caller = await runtime.authenticate(authorization);
  const { usable } = await usableProviders(runtime, config, caller);
  return { object: 'list', data: MODEL_CATALOG.filter((m) => usable(m.provider)).map(modelObject) };
}

/** One model by `provider/id`, bare name or alias; 404 `model_not_found` when unknown or not callable by this project. */
export async function getModel(runtime: GatewayRuntime, config: GatewayConfig, authorization: string | undefined, requested: string) {
  const caller = await runtime.authenticate(authorization);
  const { creds, usable } = await usableProviders(runtime, config, caller);
  let id = requested;
  try {
    id = decodeURIComponent(requested);
  } catch {
    // not percent-encoded: as sent
  }
  const route = routeModel(id, (name) => creds.some((c) => c.kind === 'custom' && c.name.toLowerCase() === name.toLowerCase()));
  if (route?.kind === 'custom') {
    if (caller.project.mode === 'credits') throw modelNotFound(`model "${id}": this project pays with credits only, and custom providers need project mode provider-keys or hybrid`);
    const name = creds.find((c) => c.kind === 'custom' && c.name.toLowerCase() === route.name.toLowerCase())!.name;
    // The custom server decides what it serves: the gateway routes any model name to it.
    return { id: `${name}/${route.model}`, object: 'model', created: CREATED, owned_by: name };
  }
  if (!route?.entry) throw modelNotFound(`model "${id}" is not in the catalog; GET /v1/models lists the models this key can call`);
  if (!usable(route.entry.provider)) throw modelNotFound(`model "${id}" is not available to this project (no ${route.entry.provider} key for its mode); GET /v1/models lists the models this key can call`);
  return modelObject(route.entry);
}
