/** GET /v1/models: the catalog models this key's project can call, as OpenAI lists models. */
import { MODEL_CATALOG, PROVIDER_KEY_SERVES, type CatalogProvider, type Prices } from '../../../shared/models.js';
import type { GatewayConfig } from '../../config.js';
import type { GatewayRuntime } from './runtime.js';

const CREATED = Math.floor(Date.UTC(2025, 0, 1) / 1000);

const perMillion = (p: Prices) => ({
  input_per_million: p.input,
  cached_input_per_million: p.cachedInput,
  cache_write_per_million: p.cacheWrite ?? p.input,
  output_per_million: p.output,
});

export async function listModels(runtime: GatewayRuntime, config: GatewayConfig, authorization: string | undefined) {
  const caller = await runtime.authenticate(authorization);
  const creds = await runtime.providerCredentials(caller.org.id);
  const own = new Set(creds.map((c) => PROVIDER_KEY_SERVES[c.kind]));
  const mode = caller.project.mode;
  const usable = (provider: CatalogProvider) => (mode !== 'credits' && own.has(provider)) || (mode !== 'provider-keys' && !!config[provider].apiKey);
  return {
    object: 'list',
    data: MODEL_CATALOG.filter((m) => usable(m.provider)).map((m) => ({
      id: `${m.provider}/${m.id}`,
      object: 'model',
      created: CREATED,
      owned_by: m.provider,
      context_window: m.contextTokens,
      max_output_tokens: m.maxOutputTokens,
      pricing: {
        ...perMillion(m.price),
        currency: 'USD',
        // The whole request is billed at a tier's prices once its input tokens exceed `above_input_tokens`.
        ...(m.tiers?.length ? { tiers: m.tiers.map((t) => ({ above_input_tokens: t.above, ...perMillion(t) })) } : {}),
      },
    })),
  };
}
