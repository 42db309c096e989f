import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';
import { PROVIDER_KEY_KINDS } from '../../../shared/models.js';

/** An organization's own upstream key, sealed with AES-256-GCM (SecretBox); only `last4` is ever shown. */
export const ProviderKey = defineEntity({
  name: 'ProviderKey',
  tableName: 'provider_key',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    provider: p.enum([...PROVIDER_KEY_KINDS]),
    name: p.string().length(40),
    baseUrl: p.string().length(500).nullable(),
    options: p.json<Record<string, unknown>>().defaultRaw(`'{}'`),
    sealedKey: p.text(),
    last4: p.string().length(4),
    status: p.enum(['active', 'disabled'] as const).default('active'),
    /** Share of its provider's calls among the organization's keys for that provider (1..100, checked by the service). */
    weight: p.integer().default(1),
    createdBy: references(User, 'created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
  uniques: [{ name: 'provider_key_org_name_unique', properties: ['orgId', 'name'] }],
});
export type ProviderKeyEntity = InferEntity<typeof ProviderKey>;
