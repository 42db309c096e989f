import { z } from 'zod';
import { id } from '../../../shared/schemas.js';
import { PROVIDERS } from '../../../shared/models.js';
import { MAX_PATTERNS } from '../../../shared/key-rules.js';
import { spendLimitInput } from '../../../shared/limit-schemas.js';

export const apiKeyName = z.string().trim().min(1, { message: 'key name is required' }).max(80, { message: 'key name must be at most 80 characters' });
export const apiKeyListInput = z.object({ projectId: id });
const rpmLimit = z.number().int().min(1, { message: 'rpmLimit must be at least 1' }).max(1_000_000);
const expiresAt = z.coerce.date({ message: 'expiresAt must be a date' });
const modelPattern = z
  .string()
  .trim()
  .min(1, { message: 'a model pattern cannot be empty' })
  .max(120, { message: 'a model pattern must be at most 120 characters' })
  .regex(/^[A-Za-z0-9._:@*/-]+$/, { message: 'a model pattern is provider/model, provider/*, a model id or * (letters, digits and . _ : @ - / *)' });
const allowedModels = z.array(modelPattern).min(1, { message: 'allow at least one model, or send null for any model' }).max(MAX_PATTERNS, { message: `at most ${MAX_PATTERNS} model patterns` });
const allowedProviders = z
  .array(z.enum([...PROVIDERS, 'custom'], { message: `a provider is one of ${[...PROVIDERS, 'custom'].join(', ')}` }))
  .min(1, { message: 'allow at least one provider, or send null for any provider' })
  .max(PROVIDERS.length + 1);

/** The settings a key can be created with and changed (omitted: unchanged; null: no restriction). */
const settings = {
  /** Requests per minute for this key; omitted or null: unlimited. */
  rpmLimit: rpmLimit.nullish(),
  expiresAt: expiresAt.nullish(),
  allowedModels: allowedModels.nullish(),
  allowedProviders: allowedProviders.nullish(),
  /** What the key may spend per period (UTC; issue #12); null: no limit. */
  spendLimit: spendLimitInput.optional(),
};

export const apiKeyCreateInput = z.object({ projectId: id, name: apiKeyName, ...settings });
export const apiKeyUpdateInput = z.object({ apiKeyId: id, name: apiKeyName.optional(), enabled: z.boolean().optional(), ...settings });
export const apiKeyRevokeInput = z.object({ apiKeyId: id });
export const MAX_ROLL_GRACE_SECONDS = 24 * 3600;
export const apiKeyRollInput = z.object({
  apiKeyId: id,
  /** How long the old secret keeps working (default 0: it stops at once); at most 24 hours. */
  graceSeconds: z.number().int().min(0, { message: 'graceSeconds cannot be negative' }).max(MAX_ROLL_GRACE_SECONDS, { message: 'the old secret can stay valid for at most 24 hours (86400 s)' }).optional(),
});
