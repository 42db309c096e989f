import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';
import { Project } from '../projects/entities.js';
import { LIMIT_PERIODS } from '../../../shared/limits.js';

/** A project's gateway key. Only SHA-256 of the key is stored; `prefix` is the part people see. */
export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_key',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    projectId: references(Project, 'project_id').deleteRule('cascade'),
    name: p.string().length(80),
    prefix: p.string().length(20),
    keyHash: p.blob().unique(),
    /** Requests per minute allowed for this key (null: unlimited). */
    rpmLimit: p.integer().nullable(),
    createdBy: references(User, 'created_by').nullable().deleteRule('set null'),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    revokedBy: references(User, 'revoked_by').nullable().deleteRule('set null'),
    /** After this instant the key is refused (null: never expires). */
    expiresAt: p.datetime().nullable(),
    /** A disabled key is refused until enabled again (unlike a revoked one). */
    enabled: p.boolean().default(true),
    /** Model patterns the key may call (`openai/gpt-4o-mini`, `anthropic/*`, `gpt-4o`); null: any. */
    allowedModels: p.json<string[]>().nullable(),
    /** Providers the key may call (`openai`, `anthropic`, ...); null: any. */
    allowedProviders: p.json<string[]>().nullable(),
    /** An owner or admin set this key's restrictions: its developer may tighten them, not loosen them. */
    restrictedByAdmin: p.boolean().default(false),
    /** The secret before the last roll, accepted until previousKeyExpiresAt. */
    previousKeyHash: p.blob().nullable().unique(),
    previousKeyExpiresAt: p.datetime().nullable(),
    rolledAt: p.datetime().nullable(),
    /** Spend limit of this key in integer nano-dollars per spendLimitPeriod (null: none; issue #12). */
    spendLimitNanos: p.bigint('bigint').nullable(),
    spendLimitPeriod: p.enum([...LIMIT_PERIODS]).nullable(),
  },
  indexes: [{ name: 'api_key_project_id_index', expression: `create index "api_key_project_id_index" on "api_key" ("project_id", "created_at" desc)` }],
});
export type ApiKeyEntity = InferEntity<typeof ApiKey>;
