import { z } from 'zod';
import { id } from '../../../shared/schemas.js';
import { ALIBABA_REGIONS, BEDROCK_PROFILES, PROVIDER_KEY_KINDS, isReservedProviderName, type ProviderKeyKind } from '../../../shared/models.js';

export const providerKeyName = z
  .string()
  .trim()
  .min(1, { message: 'name is required' })
  .max(40, { message: 'name must be at most 40 characters' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'name may use letters, digits, dot, dash and underscore (it is used in model ids: <name>/<model>)' });
export const secretKey = z.string().trim().min(1, { message: 'key is required' }).max(20_000, { message: 'key is too long' });
export const baseUrl = z
  .url({ protocol: /^https?$/, message: 'base URL must be an http(s) URL' })
  .max(500)
  .transform((u) => u.replace(/\/+$/, ''));

export const MAX_KEY_WEIGHT = 100;
/** A key's share of its provider's calls among the organization's keys for that provider. */
export const keyWeight = z
  .number({ message: `weight must be a whole number from 1 to ${MAX_KEY_WEIGHT}` })
  .int({ message: `weight must be a whole number from 1 to ${MAX_KEY_WEIGHT}` })
  .min(1, { message: `weight must be at least 1 (disable the key to give it no calls)` })
  .max(MAX_KEY_WEIGHT, { message: `weight must be at most ${MAX_KEY_WEIGHT}` });

const azureOptions = z.object({
  resource: z.string().trim().regex(/^[A-Za-z0-9-]{2,64}$/, { message: 'resource is the name in https://<resource>.openai.azure.com' }),
  deployment: z.string().trim().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, { message: 'deployment name may use letters, digits, dot, dash and underscore' }),
  apiVersion: z.string().trim().regex(/^\d{4}-\d{2}-\d{2}(-preview)?$/, { message: 'apiVersion looks like 2024-10-21' }).default('2024-10-21'),
});
const alibabaOptions = z.object({ region: z.enum(Object.keys(ALIBABA_REGIONS) as [keyof typeof ALIBABA_REGIONS]).default('intl') });
const bedrockOptions = z.object({
  region: z.string().trim().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: 'region looks like us-east-1' }).default('us-east-1'),
  // Claude models are called through an inference profile (`global.anthropic.…`); `none` calls the bare model id.
  inferenceProfile: z.enum([...BEDROCK_PROFILES, 'none'], { message: 'inference profile is one of global, us, eu, apac, jp, au, us-gov, none' }).default('global'),
});
const vertexOptions = z.object({
  location: z.string().trim().regex(/^(global|[a-z]+-[a-z]+\d)$/, { message: 'location looks like us-central1 or global' }).default('us-central1'),
  projectId: z.string().trim().regex(/^[a-z][a-z0-9-]{4,61}[a-z0-9]$/, { message: 'not a Google Cloud project id' }).optional(),
});
const noOptions = z.object({}).strip();

export const OPTIONS_SCHEMAS: Record<ProviderKeyKind, z.ZodType<Record<string, unknown>>> = {
  openai: noOptions,
  anthropic: noOptions,
  google: noOptions,
  vertex: vertexOptions,
  bedrock: bedrockOptions,
  azure: azureOptions,
  alibaba: alibabaOptions,
  custom: noOptions,
};

export const providerKeyCreateInput = z.object({
  orgId: id,
  provider: z.enum(PROVIDER_KEY_KINDS),
  key: secretKey,
  name: providerKeyName.optional(),
  baseUrl: baseUrl.optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  weight: keyWeight.optional(),
});
export const providerKeyUpdateInput = z.object({
  providerKeyId: id,
  key: secretKey.optional(),
  name: providerKeyName.optional(),
  status: z.enum(['active', 'disabled']).optional(),
  baseUrl: baseUrl.optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  weight: keyWeight.optional(),
});
export const providerKeyRef = z.object({ providerKeyId: id });
export const providerKeyListInput = z.object({ orgId: id });

export { isReservedProviderName };
