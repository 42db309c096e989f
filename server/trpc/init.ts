import { initTRPC, TRPCError } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { z } from 'zod';
import { DriverException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { can, type Permission, type Role } from '../../shared/permissions.js';
import type { Context } from './context.js';
import { DomainError } from '../errors.js';
import { toTRPCError, trpcCodeOf } from './errors.js';
import { resolveOrgScope } from './org-scope.js';
import { isDatabaseUnavailable } from '../db/pg-errors.js';
import { budgetMessage, inputTransformer, refusalOf, walkWithinBudget } from './input-guard.js';
import { sharedOutputTransformer } from './shared-output.js';
import type { RowOf } from '../db/rows.js';
import type { Membership } from '../modules/organizations/entities.js';
import { observeProcedure } from '../observability/metrics.js';
import { traceProcedure } from '../observability/tracing.js';

export interface Meta {
  /** Set on every org-scoped procedure; the roles-matrix test reads it. */
  permission?: Permission;
}

const INTERNAL_MESSAGE = 'something went wrong on our side; please try again';

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    // Inputs are read with the guarded superjson (no referential equalities, a bounded size); outputs are superjson, live events serialized once for all their subscribers (shared-output.ts).
    transformer: { input: inputTransformer, output: sharedOutputTransformer },
    errorFormatter({ shape, error }) {
      const cause = error.cause;
      // A domain error that reached the formatter unmapped (e.g. thrown while a subscription streams).
      const domain = cause instanceof DomainError ? cause : undefined;
      const domainCode = domain && error.code === 'INTERNAL_SERVER_ERROR' ? trpcCodeOf(domain) : undefined;
      const zodIssues = cause instanceof z.ZodError ? cause.issues.map((i) => ({ path: i.path.map(String), message: i.message })) : undefined;
      return {
        ...shape,
        ...(domainCode ? { code: TRPC_ERROR_CODES_BY_KEY[domainCode] } : {}),
        // zod's own message is a JSON dump of its issues; programs and people get a sentence instead.
        message: zodIssues
          ? zodIssues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')
          : domain
            ? domain.message
            : // Failures outside a procedure (e.g. building the context) must not leak their internals either.
              error.code === 'INTERNAL_SERVER_ERROR' ? INTERNAL_MESSAGE : shape.message,
        data: {
          ...shape.data,
          ...(domainCode ? { code: domainCode, httpStatus: getHTTPStatusCodeFromError(toTRPCError(domain!)) } : {}),
          stack: undefined,
          zodIssues,
          current: domain?.kind === 'conflict' ? domain.current : undefined,
        },
      };
    },
  });

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const middleware = t.middleware;

/** Outermost: every call counted, timed and traced with the code its caller gets (docs/operations.md). */
const observedProcedure = t.procedure.use(async ({ type, path, next }) => {
  const span = traceProcedure(path, type);
  const started = performance.now();
  const result = await next();
  const code = result.ok ? 'OK' : result.error.code;
  observeProcedure(path, type, code, (performance.now() - started) / 1000);
  span?.end(!result.ok && getHTTPStatusCodeFromError(result.error) >= 500 ? `${code}: ${result.error.message}` : undefined);
  return result;
});

/**
 * Every procedure: a fresh EntityManager per call, cross-origin mutations refused, and database
 * errors a user can act on mapped to their tRPC codes; anything else is logged and hidden.
 */
export const publicProcedure = observedProcedure.use(async ({ ctx, type, path, getRawInput, next }) => {
  if (type === 'mutation' && !ctx.sameOrigin) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'cross-origin requests are not allowed' });
  }
  const rawInput = await getRawInput();
  const refusal = refusalOf(rawInput);
  if (refusal) throw new TRPCError({ code: 'BAD_REQUEST', message: refusal });
  // PostgreSQL text cannot hold NUL; refused here, such input would fail in the database as a 500.
  // The walk is bounded (inputs from createCaller skip the wire checks).
  const scan = walkWithinBudget(rawInput, (text) => text.includes('\u0000'));
  if (scan === 'stopped') throw new TRPCError({ code: 'BAD_REQUEST', message: 'text must not contain NUL (\\u0000) characters' });
  if (scan) throw new TRPCError({ code: 'BAD_REQUEST', message: budgetMessage(scan) });
  const result = await next({ ctx: { ...ctx, em: ctx.services.orm.em.fork() } });
  if (!result.ok) {
    const err = result.error;
    const cause = err.cause;
    // Services throw domain errors (server/errors.ts); this is where they become tRPC codes.
    if (cause instanceof DomainError) throw toTRPCError(cause);
    if (cause instanceof UniqueConstraintViolationException) {
      throw new TRPCError({ code: 'CONFLICT', message: 'that already exists' });
    }
    // SQLSTATE class 22 (data exception): a value from the request that PostgreSQL cannot take,
    // e.g. an id beyond bigint. The caller can fix it; logged so the missing validation gets added.
    if (cause instanceof DriverException && cause.code?.startsWith('22')) {
      ctx.services.log.warn({ err: cause, path }, 'input reached the database unvalidated');
      throw new TRPCError({ code: 'BAD_REQUEST', message: 'a value in the request is out of range or not in the expected format' });
    }
    // PostgreSQL restarting or unreachable: nothing was committed; the caller may retry shortly.
    if (err.code === 'INTERNAL_SERVER_ERROR' && isDatabaseUnavailable(cause)) {
      ctx.services.log.warn({ err: cause, path }, 'procedure refused: the database is unavailable');
      throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'the database is unavailable right now; please retry in a few seconds' });
    }
    if (err.code === 'INTERNAL_SERVER_ERROR') {
      ctx.services.log.error({ err: cause ?? err, path }, 'procedure failed');
      if (!(cause instanceof TRPCError)) {
        throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: INTERNAL_MESSAGE });
      }
    }
  }
  return result;
});

export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'sign in first' });
  return next({ ctx: { ...ctx, user: ctx.user } });
});

async function membershipRole(ctx: Context, orgId: string, userId: string): Promise<Role | null> {
  const rows = await ctx.em.execute<RowOf<typeof Membership, 'role'>[]>('select role from membership where org_id = ? and user_id = ?', [orgId, userId]);
  return rows[0]?.role ?? null;
}

/**
 * The one builder for org-scoped procedures: finds the organization from the input (orgId, or the
 * resource's owner), checks membership (outsiders get NOT_FOUND: existence never leaks) and the
 * permission from the shared matrix (FORBIDDEN, naming the role).
 */
export function orgProcedure(permission: Permission) {
  return authedProcedure.meta({ permission }).use(async ({ ctx, getRawInput, next }) => {
    const scope = await resolveOrgScope(ctx.em, await getRawInput());
    if (scope.kind === 'invalid') throw new TRPCError({ code: 'BAD_REQUEST', message: `${scope.key} must be a valid id` });
    if (scope.kind === 'none') throw new TRPCError({ code: 'BAD_REQUEST', message: 'an organization or resource id is required' });
    if (scope.kind === 'missing') throw new TRPCError({ code: 'NOT_FOUND', message: 'not found' });
    const role = await membershipRole(ctx, scope.orgId, ctx.user.id);
    if (!role) throw new TRPCError({ code: 'NOT_FOUND', message: 'not found' });
    if (!can(role, permission)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `your role (${role}) does not allow this` });
    }
    return next({ ctx: { ...ctx, orgId: scope.orgId, role } });
  });
}
