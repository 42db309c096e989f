/** Input schemas, shared by the server (validation) and the client (forms). */
import { z } from 'zod';
import { limitAmount, spendLimitInput } from './limit-schemas.js';
import { ROLES } from './permissions.js';

export const id = z.uuid({ message: 'must be a valid id' });
export const email = z.email({ message: 'must be a valid email address' }).max(254).transform((e) => e.trim().toLowerCase());
export const password = z
  .string()
  .min(10, { message: 'password must be at least 10 characters' })
  .max(256, { message: 'password must be at most 256 characters' });
export const personName = z.string().trim().min(1, { message: 'name is required' }).max(100, { message: 'name must be at most 100 characters' });
export const orgName = z.string().trim().min(1, { message: 'organization name is required' }).max(80, { message: 'organization name must be at most 80 characters' });
export const projectName = z.string().trim().min(1, { message: 'project name is required' }).max(80, { message: 'project name must be at most 80 characters' });
export const role = z.enum(ROLES);
export const retentionLevel = z.enum(['none', 'retain']);
export const projectMode = z.enum(['credits', 'provider-keys', 'hybrid']);
export const totpCode = z.string().regex(/^\d{6}$/, { message: 'enter the 6-digit code from your authenticator app' });

export const signUpInput = z.object({ email, password, name: personName });
export const signInInput = z.object({
  email,
  password: z.string().min(1, { message: 'enter your password' }).max(256, { message: 'password must be at most 256 characters' }),
  totp: totpCode.optional(),
  /** In place of `totp`, when the authenticator is lost: one of the codes issued with two-factor. */
  recoveryCode: z.string().trim().min(10, { message: 'a recovery code looks like abcde-fghij' }).max(40, { message: 'a recovery code looks like abcde-fghij' }).optional(),
});
/** The token of an emailed sign-in link (`/signin/link?token=...`). */
export const signInWithLinkInput = z.object({ token: z.string().min(20).max(100) });
/** To turn two-factor off: a code from the authenticator, or a recovery code if it is lost. */
export const twoFactorDisableInput = z.object({
  code: z.string().trim().min(6, { message: 'enter the 6-digit code from your authenticator app, or a recovery code' }).max(40, { message: 'enter the 6-digit code from your authenticator app, or a recovery code' }),
});
/** Accounts (auth.requestPasswordReset, resetPassword, changePassword, changeEmail, updateProfile). */
export const accountLinkToken = z.string().trim().min(20, { message: 'this link is incomplete; open it from the email again' }).max(100, { message: 'this link is not valid' });
export const requestPasswordResetInput = z.object({ email });
export const resetPasswordInput = z.object({ token: accountLinkToken, password });
export const changePasswordInput = z.object({
  currentPassword: z.string().min(1, { message: 'enter your current password' }).max(256, { message: 'password must be at most 256 characters' }),
  password,
});
export const changeEmailInput = z.object({ email });
export const accountTokenInput = z.object({ token: accountLinkToken });
export const updateProfileInput = z.object({ name: personName });
export const sessionRevokeInput = z.object({ id: z.string().min(1).max(64) });
export const tokenCreateInput = z.object({ name: z.string().trim().min(1, { message: 'give the token a name' }).max(80, { message: 'token name must be at most 80 characters' }) });
export const byId = z.object({ id });
export const twoFactorCodeInput = z.object({ code: totpCode });

export const orgRef = z.object({ orgId: id });
export const orgCreateInput = z.object({ name: orgName, billingEmail: email.optional() });
export const orgUpdateInput = z.object({
  orgId: id,
  version: z.number().int().nonnegative(),
  name: orgName.optional(),
  billingEmail: email.nullable().optional(),
  retentionLevel: retentionLevel.optional(),
  // Spend limits (issue #12; server/modules/limits): caps on credits per UTC day / month and on calls in flight (owner),
  // and the default budget of developers without one of their own (owner or admin). null removes one.
  dailySpendCap: limitAmount.nullable().optional(),
  monthlySpendCap: limitAmount.nullable().optional(),
  maxConcurrentCalls: z.number().int().min(1, { message: 'maxConcurrentCalls must be at least 1 (null: no cap)' }).max(100_000).nullable().optional(),
  developerBudget: spendLimitInput.optional(),
});
export const orgDeleteInput = z.object({ orgId: id, confirmName: z.string().max(200) });

export const projectCreateInput = z.object({ orgId: id, name: projectName });
export const projectRef = z.object({ projectId: id });
/** A browser origin as browsers send it: http(s)://host[:port], no path, lowercased (a trailing slash is dropped). */
export function normalizeOrigin(value: string): string | null {
  const text = value.trim().replace(/\/$/, '');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password || /\/\/.*\//.test(text)) return null;
  return url.origin;
}
export const browserOrigin = z
  .string()
  .max(300)
  .transform((v, ctx) => {
    const origin = normalizeOrigin(v);
    if (!origin) ctx.addIssue({ code: 'custom', message: `"${v}" is not an origin: write scheme://host[:port], e.g. https://app.example.com (no path)` });
    return origin ?? v;
  });
/** Routing settings of a project (issue #11; docs/api.md "project.update routing"). */
export const ROUTING_STRATEGIES = ['balanced', 'price', 'latency', 'uptime'] as const;
export const routingStrategy = z.enum(ROUTING_STRATEGIES, { message: 'strategy must be one of balanced, price, latency, uptime' });
export const ROUTING_LIMITS = { maxAttempts: 5, fallbackModels: 20, chainLength: 5 } as const;
const routingModel = z.string().trim().min(1, { message: 'a model name is empty' }).max(200, { message: 'a model name is longer than 200 characters' });
export const projectRoutingInput = z
  .object({
    strategy: routingStrategy.optional(),
    maxAttempts: z
      .number({ message: 'maxAttempts must be a whole number from 1 to 5' })
      .int({ message: 'maxAttempts must be a whole number from 1 to 5' })
      .min(1, { message: 'maxAttempts must be at least 1 (the first attempt)' })
      .max(ROUTING_LIMITS.maxAttempts, { message: `maxAttempts must be at most ${ROUTING_LIMITS.maxAttempts}` })
      .optional(),
    /** Per requested model, the models tried after it, in order (replaces the whole map; {} clears it). */
    fallbacks: z
      .record(
        routingModel,
        z
          .array(routingModel)
          .min(1, { message: 'a fallback chain needs at least one model (remove the model to have none)' })
          .max(ROUTING_LIMITS.chainLength, { message: `a fallback chain has at most ${ROUTING_LIMITS.chainLength} models` }),
      )
      .refine((m) => Object.keys(m).length <= ROUTING_LIMITS.fallbackModels, { message: `fallback chains for at most ${ROUTING_LIMITS.fallbackModels} models` })
      .optional(),
  })
  .strict();
export type ProjectRoutingInput = z.infer<typeof projectRoutingInput>;
export const projectUpdateInput = z.object({
  projectId: id,
  name: projectName.optional(),
  mode: projectMode.optional(),
  cachingEnabled: z.boolean().optional(),
  cacheTtlSeconds: z.number().int().min(10).max(86400 * 30).optional(),
  /** Browser origins allowed to call /v1 with the project's keys (CORS); [] allows any origin. */
  allowedOrigins: z.array(browserOrigin).max(50, { message: 'at most 50 allowed origins' }).optional(),
  /** Fields left out keep their stored value; the catalog check of model names is the service's. */
  routing: projectRoutingInput.optional(),
});

export const inviteInput = z.object({ orgId: id, email, role });
export const invitationRef = z.object({ invitationId: id });
export const acceptInvitationInput = z.object({ token: z.string().min(20).max(200) });
export const memberRoleInput = z.object({ orgId: id, userId: id, role });
export const memberRef = z.object({ orgId: id, userId: id });
/** Removing a member revokes the API keys they created, unless they go to `transferKeysTo` (a member who stays). */
export const memberRemoveInput = memberRef.extend({ transferKeysTo: id.optional() });
export const cursorInput = z.object({ orgId: id, cursor: z.string().max(100).optional(), limit: z.number().int().min(1).max(200).optional() });

export const liveInput = z.object({ orgId: id, lastEventId: z.string().max(40).nullish() });
export const presenceInput = z.object({ orgId: id, page: z.string().trim().min(1).max(60) });
export const tokenRevokeInput = z.object({ id: z.string().min(1).max(64) });
export const invitationPreviewInput = acceptInvitationInput;
export const auditListInput = z.object({
  orgId: id,
  cursor: z.string().max(30).optional(),
  limit: z.number().int().min(1).max(200).optional(),
  /** A member's user id, or 'system' for entries no person made (jobs, payment webhooks, the operator). */
  actorId: z.union([id, z.literal('system')]).optional(),
  /** Only these action ids (shared/audit-actions.ts names them). */
  actions: z.array(z.string().min(1).max(80)).min(1).max(60).optional(),
  from: z.coerce.date({ message: 'must be a date' }).optional(),
  to: z.coerce.date({ message: 'must be a date' }).optional(),
});
/** A ledger row id: a positive PostgreSQL bigint, as a decimal string. */
export const bigintId = (what: string) =>
  z.string().refine((v) => /^[1-9]\d{0,18}$/.test(v) && BigInt(v) <= 9_223_372_036_854_775_807n, { message: `${what} is not valid` });
export const ledgerType = z.enum(['purchase', 'usage', 'usage_credit', 'refund', 'auto_topup', 'adjustment', 'plan_charge']);
export const transactionsInput = z.object({
  orgId: id,
  cursor: bigintId('cursor').optional(),
  limit: z.number().int().min(1).max(200).optional(),
  type: ledgerType.optional(),
});
/** An IANA time zone name (e.g. "Europe/Paris"), as the browser reports it. */
export const timeZone = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, { message: 'is not a known time zone' });
/** The grouped history: usage summed per day (per hour today) in `timeZone` (default UTC), other entries one by one. */
export const transactionsGroupedInput = z.object({
  orgId: id,
  cursor: z.string().max(64).optional(),
  limit: z.number().int().min(1).max(200).optional(),
  type: ledgerType.optional(),
  timeZone: timeZone.optional(),
});
/** `view`: every ledger row (default), or usage grouped per day as on the Transactions page. */
export const transactionsCsvInput = z.object({ orgId: id, type: ledgerType.optional(), view: z.enum(['ledger', 'grouped']).optional(), timeZone: timeZone.optional() });

/** A dollar amount as typed by a person: number or decimal string, whole cents. Returns cents. */
export const dollarAmount = z
  .union([z.number(), z.string().trim().max(20)])
  .transform((v, ctx) => {
    const text = typeof v === 'number' ? String(v) : v.replace(/^\$/, '').replace(/,/g, '');
    const m = /^(\d{1,7})(?:\.(\d{1,2}))?$/.exec(text);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'enter an amount in dollars, like 25 or 25.50' });
      return z.NEVER;
    }
    return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  });
export const MIN_PURCHASE_CENTS = 1000;
export const MAX_PURCHASE_CENTS = 1_000_000_00;
export const purchaseCreditsInput = z.object({
  orgId: id,
  amount: dollarAmount.refine((c) => c >= MIN_PURCHASE_CENTS, { message: 'the minimum purchase is $10' }).refine((c) => c <= MAX_PURCHASE_CENTS, { message: 'the maximum purchase is $1,000,000' }),
});
export const autoTopUpInput = z.object({
  orgId: id,
  enabled: z.boolean(),
  threshold: dollarAmount.refine((c) => c <= MAX_PURCHASE_CENTS, { message: 'threshold is too large' }),
  amount: dollarAmount.refine((c) => c >= MIN_PURCHASE_CENTS, { message: 'the auto top-up amount must be at least $10' }).refine((c) => c <= MAX_PURCHASE_CENTS, { message: 'the maximum is $1,000,000' }),
});
export const invoicesInput = z.object({ orgId: id, cursor: z.string().min(3).max(255).regex(/^in_[A-Za-z0-9_]+$/, { message: 'not an invoice id' }).optional() });
export const changePlanInput = z.object({ orgId: id, plan: z.enum(['free', 'pro']), billingCycle: z.enum(['monthly', 'yearly']).default('monthly') });
export const paymentMethodRef = z.object({ orgId: id, paymentMethodId: z.string().min(3).max(255).regex(/^pm_[A-Za-z0-9_]+$/, { message: 'not a payment method id' }) });
export const refundInput = z.object({ orgId: id, transactionId: bigintId('transaction id'), reason: z.string().trim().min(3, { message: 'give a reason (at least 3 characters)' }).max(500) });
export const budgetAlertKind = z.enum(['balance_below', 'monthly_spend_above']);
export const budgetAlertSetInput = z.object({ orgId: id, kind: budgetAlertKind, threshold: dollarAmount.nullable() });
