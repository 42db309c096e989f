import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

export const User = defineEntity({
  name: 'User',
  tableName: 'app_user',
  properties: {
    id: p.uuid().primary(),
    email: p.string().unique(),
    name: p.string(),
    passwordHash: p.string(),
    /** TOTP key, AES-256-GCM encrypted with APP_SECRET; set once 2FA is enabled. */
    totpSecret: p.string().nullable(),
    /** Key shown during 2FA setup, until confirmed with a code. */
    totpPendingSecret: p.string().nullable(),
    /** Operator override of the organizations-per-user limit (null: the plan's). */
    organizationLimit: p.integer().nullable(),
    createdAt: p.datetime(),
  },
});
export type UserEntity = InferEntity<typeof User>;

export const Session = defineEntity({
  name: 'Session',
  tableName: 'session',
  properties: {
    id: p.string().primary(),
    userId: p.uuid().index(),
    secretHash: p.blob(),
    createdAt: p.datetime(),
    lastVerifiedAt: p.datetime(),
    userAgent: p.string().nullable(),
  },
});
export type SessionEntity = InferEntity<typeof Session>;

export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_token',
  properties: {
    id: p.string().primary(),
    userId: p.uuid().index(),
    name: p.string(),
    secretHash: p.blob(),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
  },
});
export type ApiTokenEntity = InferEntity<typeof ApiToken>;
