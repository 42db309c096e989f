import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { PROVIDER_KEY_KINDS } from '../../../shared/models.js';

/** An organization's own upstream key, sealed with AES-256-GCM (SecretBox); only `last4` is ever shown. */
export const ProviderKey = defineEntity({
  name: 'ProviderKey',
  tableName: 'provider_key',
  properties: {
    id: p.uuid().primary(),
    orgId: p.uuid(),
    provider: p.enum([...PROVIDER_KEY_KINDS]),
    name: p.string(),
    baseUrl: p.string().nullable(),
    options: p.json<Record<string, unknown>>(),
    sealedKey: p.text(),
    last4: p.string(),
    status: p.enum(['active', 'disabled'] as const),
    createdBy: p.uuid().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
  uniques: [{ properties: ['orgId', 'name'] }],
});
export type ProviderKeyEntity = InferEntity<typeof ProviderKey>;
