import { router, publicProcedure, authedProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { clearedSessionCookie, invalidateSession, sessionCookie } from '../../auth/session.js';
import * as auth from './service.js';

export const authRouter = router({
  signUp: publicProcedure.input(s.signUpInput).mutation(async ({ ctx, input }) => {
    const { user, token } = await auth.signUp(ctx.em, input, { ip: ctx.ip });
    ctx.setCookie(sessionCookie(token, ctx.services.config.env === 'production'));
    return { user: auth.userView(user) };
  }),
  signIn: publicProcedure.input(s.signInInput).mutation(async ({ ctx, input }) => {
    const result = await auth.signIn(ctx.em, ctx.services.secretBox, input, { ip: ctx.ip });
    if ('twoFactorRequired' in result) return { twoFactorRequired: true as const };
    ctx.setCookie(sessionCookie(result.token, ctx.services.config.env === 'production'));
    return { user: auth.userView(result.user) };
  }),
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionId) {
      await invalidateSession(ctx.em, ctx.sessionId);
      await endCredential(ctx, ctx.sessionId);
    }
    ctx.setCookie(clearedSessionCookie(ctx.services.config.env === 'production'));
    return { ok: true as const };
  }),
  me: publicProcedure.query(({ ctx }) => (ctx.user ? { user: auth.userView(ctx.user) } : null)),
  twoFactor: router({
    setup: authedProcedure.mutation(({ ctx }) => auth.beginTwoFactorSetup(ctx.em, ctx.services.secretBox, ctx.user.id)),
    enable: authedProcedure.input(s.twoFactorCodeInput).mutation(async ({ ctx, input }) => ({
      user: await auth.enableTwoFactor(ctx.em, ctx.services.secretBox, ctx.user.id, input.code),
    })),
    disable: authedProcedure.input(s.twoFactorCodeInput).mutation(async ({ ctx, input }) => ({
      user: await auth.disableTwoFactor(ctx.em, ctx.services.secretBox, ctx.user.id, input.code),
    })),
  }),
  tokens: router({
    create: authedProcedure.input(s.tokenCreateInput).mutation(({ ctx, input }) => auth.createPersonalToken(ctx.em, ctx.user.id, input.name)),
    list: authedProcedure.query(({ ctx }) => auth.listPersonalTokens(ctx.em, ctx.user.id)),
    revoke: authedProcedure.input(s.tokenRevokeInput).mutation(async ({ ctx, input }) => {
      const result = await auth.revokePersonalToken(ctx.em, ctx.user.id, input.id);
      await endCredential(ctx, `token:${input.id}`);
      return result;
    }),
  }),
});

/** Ends every live stream and WebSocket opened with this credential, on every instance. */
async function endCredential(ctx: { em: import('@mikro-orm/postgresql').EntityManager; services: { bus: import('../../events/bus.js').EventBus } }, key: string) {
  await ctx.services.bus.endSession(key, async (channel, payload) => {
    await ctx.em.execute('select pg_notify(?, ?)', [channel, payload]);
  });
}
