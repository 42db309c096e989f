import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';

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
    /** The last 30-second TOTP step accepted, so each code is usable once. */
    totpLastStep: p.bigint('string').nullable(),
    /** Operator override of the organizations-per-user limit (null: the plan's). */
    organizationLimit: p.integer().nullable(),
    /** When the owner proved the current address is theirs (a link emailed to it); null: not yet. */
    emailVerifiedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});
export type UserEntity = InferEntity<typeof User>;

export const Session = defineEntity({
  name: 'Session',
  tableName: 'session',
  properties: {
    id: p.string().primary(),
    userId: references(User, 'user_id').deleteRule('cascade').index(),
    secretHash: p.blob(),
    createdAt: p.datetime(),
    lastVerifiedAt: p.datetime(),
    userAgent: p.string().nullable(),
    /** The address the session was opened from (shown in the sessions list). */
    ip: p.string().length(100).nullable(),
  },
});
export type SessionEntity = InferEntity<typeof Session>;

export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_token',
  properties: {
    id: p.string().primary(),
    userId: references(User, 'user_id').deleteRule('cascade').index(),
    name: p.string(),
    secretHash: p.blob(),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime().nullable(),
  },
});
export type ApiTokenEntity = InferEntity<typeof ApiToken>;

/** One-time recovery codes for two-factor sign-in: SHA-256 of the (high-entropy) code; used once. */
export const RecoveryCode = defineEntity({
  name: 'RecoveryCode',
  tableName: 'recovery_code',
  properties: {
    id: p.uuid().primary(),
    userId: references(User, 'user_id').deleteRule('cascade'),
    codeHash: p.blob(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
  uniques: [{ properties: ['userId', 'codeHash'] }],
});
export type RecoveryCodeEntity = InferEntity<typeof RecoveryCode>;

/** Emailed one-time sign-in links (SHA-256 of the token), asked for while an account is under attack. */
export const SignInLink = defineEntity({
  name: 'SignInLink',
  tableName: 'sign_in_link',
  properties: {
    id: p.uuid().primary(),
    userId: references(User, 'user_id').deleteRule('cascade').index(),
    tokenHash: p.blob().unique(),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});
export type SignInLinkEntity = InferEntity<typeof SignInLink>;

export const ACCOUNT_TOKEN_PURPOSES = ['password_reset', 'email_verification', 'email_change'] as const;
export type AccountTokenPurpose = (typeof ACCOUNT_TOKEN_PURPOSES)[number];

/**
 * Emailed one-time links of account upkeep (server/auth/account-token.ts): password reset, email
 * verification, confirming a new address. SHA-256 of the token; `email` is the address the link
 * was sent to (for a change: the new one), so a link proves only that address.
 */
export const AccountToken = defineEntity({
  name: 'AccountToken',
  tableName: 'account_token',
  properties: {
    id: p.uuid().primary(),
    userId: references(User, 'user_id').deleteRule('cascade'),
    purpose: p.enum([...ACCOUNT_TOKEN_PURPOSES]),
    email: p.string(),
    tokenHash: p.blob().unique(),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
  indexes: [{ properties: ['userId', 'purpose'] }],
});
export type AccountTokenEntity = InferEntity<typeof AccountToken>;

/**
 * Account-level security events (sign-up, sign-up attempts on a taken address, two-factor changes,
 * recovery codes used). They belong to a user, not to an organization, so they are kept apart from
 * the organizations' audit_log.
 */
export const AccountAuditEntry = defineEntity({
  name: 'AccountAuditEntry',
  tableName: 'account_audit_log',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    userId: references(User, 'user_id').deleteRule('cascade'),
    actorId: references(User, 'actor_id').nullable().deleteRule('set null'),
    action: p.string(),
    ip: p.string().length(100).nullable(),
    details: p.json<Record<string, unknown>>().nullable(),
    createdAt: p.datetime(),
  },
  indexes: [{ properties: ['userId', 'id'] }],
});
export type AccountAuditEntryEntity = InferEntity<typeof AccountAuditEntry>;

/** Fixed-window counters of the sign-in and sign-up rate limits, shared by every instance. */
export const RateLimit = defineEntity({
  name: 'RateLimit',
  tableName: 'rate_limit',
  properties: {
    key: p.string().length(300).primary(),
    windowStart: p.datetime(),
    count: p.integer(),
  },
});
export type RateLimitEntity = InferEntity<typeof RateLimit>;
