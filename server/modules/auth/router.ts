import { router, publicProcedure, authedProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { clearedSessionCookie, invalidateSession, sessionCookie } from '../../auth/session.js';
import * as auth from './service.js';
import * as twoFactor from './two-factor-service.js';
import * as account from './account-service.js';
import { invitationsForUser } from '../team/service.js';
import type { Context } from '../../trpc/context.js';

const meta = (ctx: Pick<Context, 'ip' | 'userAgent'>) => ({ ip: ctx.ip, userAgent: ctx.userAgent });

export const authRouter = router({
  /** The same answer whether or not the email is taken (a session cookie either way; `me` tells). */
  signUp: publicProcedure.input(s.signUpInput).mutation(async ({ ctx, input }) => {
    const { user, token } = await auth.signUp(ctx.services, input, meta(ctx));
    ctx.setCookie(sessionCookie(token, ctx.services.config.env === 'production'));
    return { user };
  }),
  signIn: publicProcedure.input(s.signInInput).mutation(async ({ ctx, input }) => {
    const result = await auth.signIn(ctx.services, input, meta(ctx));
    if (result.kind === 'twoFactorRequired') return { twoFactorRequired: true as const };
    if (result.kind === 'emailLinkRequired') return { emailLinkRequired: true as const };
    ctx.setCookie(sessionCookie(result.token, ctx.services.config.env === 'production'));
    return { user: auth.userView(result.user) };
  }),
  signInWithLink: publicProcedure.input(s.signInWithLinkInput).mutation(async ({ ctx, input }) => {
    const result = await auth.signInWithLink(ctx.services, input.token, meta(ctx));
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

  /** -> {ok}: the same answer whether or not the address has an account (a link is emailed if it has). */
  requestPasswordReset: publicProcedure
    .input(s.requestPasswordResetInput)
    .mutation(({ ctx, input }) => account.requestPasswordReset(ctx.services, input.email, meta(ctx))),
  /** {token, password} -> {ok, email}: ends every session of the account; sign in with the new password. */
  resetPassword: publicProcedure.input(s.resetPasswordInput).mutation(({ ctx, input }) => account.resetPassword(ctx.services, input.token, input.password, meta(ctx))),
  /** {currentPassword, password} -> {ok, otherSessionsEnded}: ends the user's other sessions and closes their WebSockets. */
  changePassword: authedProcedure
    .input(s.changePasswordInput)
    .mutation(({ ctx, input }) => account.changePassword(ctx.services, ctx.user.id, ctx.sessionId, input, meta(ctx))),
  /** {email} -> {ok, email, expiresAt}: a confirmation link goes to the new address (auth.confirmEmail). */
  changeEmail: authedProcedure.input(s.changeEmailInput).mutation(({ ctx, input }) => account.changeEmail(ctx.services, ctx.user.id, input.email, meta(ctx))),
  confirmEmail: publicProcedure.input(s.accountTokenInput).mutation(({ ctx, input }) => account.confirmEmail(ctx.services, input.token, meta(ctx))),
  verifyEmail: publicProcedure.input(s.accountTokenInput).mutation(({ ctx, input }) => account.verifyEmail(ctx.services, input.token, meta(ctx))),
  /** Emails a new verification link to the current address (none if it is verified already). */
  sendVerificationEmail: authedProcedure.mutation(({ ctx }) => account.sendVerificationEmail(ctx.services, ctx.user.id, meta(ctx))),
  updateProfile: authedProcedure.input(s.updateProfileInput).mutation(({ ctx, input }) => account.updateProfile(ctx.services, ctx.user.id, input.name, meta(ctx))),
  /** Invitations addressed to the caller's email, once verified (none before). */
  pendingInvitations: authedProcedure.query(({ ctx }) => invitationsForUser(ctx.em, ctx.user)),
  sessions: router({
    list: authedProcedure.query(({ ctx }) => account.listSessions(ctx.em, ctx.user.id, ctx.sessionId)),
    /** "Sign out everywhere else" -> {ok, ended}. */
    revokeOthers: authedProcedure.mutation(({ ctx }) => account.revokeOtherSessions(ctx.services, ctx.user.id, ctx.sessionId, meta(ctx))),
    revoke: authedProcedure.input(s.sessionRevokeInput).mutation(({ ctx, input }) => account.revokeSession(ctx.services, ctx.user.id, ctx.sessionId, input.id, meta(ctx))),
  }),
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
