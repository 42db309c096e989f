import { router, publicProcedure, authedProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { clearedSessionCookie, invalidateSession, sessionCookie } from '../../auth/session.js';
import * as auth from './service.js';
import * as twoFactor from './two-factor-service.js';

export const authRouter = router({
  /** The same answer whether or not the email is taken (a session cookie either way; `me` tells). */
  signUp: publicProcedure.input(s.signUpInput).mutation(async ({ ctx, input }) => {
    const { user, token } = await auth.signUp(ctx.services, input, { ip: ctx.ip });
    ctx.setCookie(sessionCookie(token, ctx.services.config.env === 'production'));
    return { user };
  }),
  signIn: publicProcedure.input(s.signInInput).mutation(async ({ ctx, input }) => {
    const result = await auth.signIn(ctx.services, input, { ip: ctx.ip });
    if (result.kind === 'twoFactorRequired') return { twoFactorRequired: true as const };
    if (result.kind === 'emailLinkRequired') return { emailLinkRequired: true as const };
    ctx.setCookie(sessionCookie(result.token, ctx.services.config.env === 'production'));
    return { user: auth.userView(result.user) };
  }),
  signInWithLink: publicProcedure.input(s.signInWithLinkInput).mutation(async ({ ctx, input }) => {
    const result = await auth.signInWithLink(ctx.services, input.token, { ip: ctx.ip });
    ctx.setCookie(sessionCookie(result.token, ctx.services.config.env === 'production'));
    return { user: auth.userView(result.user) };
  }),
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionId) {
      await invalidateSession(ctx.em, ctx.sessionId);
      await twoFactor.endSessionsEverywhere(ctx.services, [ctx.sessionId]);
    }
    ctx.setCookie(clearedSessionCookie(ctx.services.config.env === 'production'));
    return { ok: true as const };
  }),
  me: publicProcedure.query(({ ctx }) => (ctx.user ? { user: auth.userView(ctx.user) } : null)),
  twoFactor: router({
    status: authedProcedure.query(({ ctx }) => twoFactor.twoFactorStatus(ctx.em, ctx.user.id)),
    setup: authedProcedure.mutation(({ ctx }) => twoFactor.beginTwoFactorSetup(ctx.em, ctx.services.secretBox, ctx.user.id)),
    /** -> {user, recoveryCodes} (shown once); ends the user's other sessions. */
    enable: authedProcedure
      .input(s.twoFactorCodeInput)
      .mutation(({ ctx, input }) => twoFactor.enableTwoFactor(ctx.services, ctx.user.id, ctx.sessionId, input.code, { ip: ctx.ip })),
    disable: authedProcedure.input(s.twoFactorDisableInput).mutation(({ ctx, input }) => twoFactor.disableTwoFactor(ctx.services, ctx.user.id, input.code, { ip: ctx.ip })),
    regenerateRecoveryCodes: authedProcedure
      .input(s.twoFactorCodeInput)
      .mutation(({ ctx, input }) => twoFactor.regenerateRecoveryCodes(ctx.services, ctx.user.id, input.code, { ip: ctx.ip })),
  }),
  tokens: router({
    create: authedProcedure.input(s.tokenCreateInput).mutation(({ ctx, input }) => auth.createPersonalToken(ctx.em, ctx.user.id, input.name)),
    list: authedProcedure.query(({ ctx }) => auth.listPersonalTokens(ctx.em, ctx.user.id)),
    revoke: authedProcedure.input(s.tokenRevokeInput).mutation(async ({ ctx, input }) => {
      const result = await auth.revokePersonalToken(ctx.em, ctx.user.id, input.id);
      await twoFactor.endSessionsEverywhere(ctx.services, [`token:${input.id}`]);
      return result;
    }),
  }),
});
