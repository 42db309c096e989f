import { router, orgProcedure, authedProcedure, publicProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as team from './service.js';
import { setMemberBudget } from '../limits/service.js';
import { teamSetBudgetInput } from '../../../shared/limit-schemas.js';

export const teamRouter = router({
  members: orgProcedure('org.view').input(s.orgRef).query(({ ctx }) => team.listMembers(ctx.em, ctx.orgId)),
  invitations: orgProcedure('org.view').input(s.orgRef).query(({ ctx }) => team.listPendingInvitations(ctx.em, ctx.orgId)),
  invite: orgProcedure('member.manage')
    .input(s.inviteInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => team.inviteMember(work, ctx.role, ctx.orgId, input, ctx.services.appUrl)),
    ),
  revokeInvitation: orgProcedure('member.manage')
    .input(s.invitationRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => team.revokeInvitation(work, input.invitationId))),
  invitationPreview: publicProcedure.input(s.invitationPreviewInput).query(({ ctx, input }) => team.previewInvitation(ctx.em, input.token)),
  acceptInvitation: authedProcedure
    .input(s.acceptInvitationInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => team.acceptInvitation(work, ctx.user, input.token))),
  /** From the home page: an invitation addressed to the caller's verified email (auth.pendingInvitations). */
  acceptPendingInvitation: authedProcedure
    .input(s.invitationRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => team.acceptPendingInvitation(work, ctx.user, input.invitationId))),
  declineInvitation: authedProcedure
    .input(s.invitationRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => team.declineInvitation(work, ctx.user, input.invitationId))),
  updateRole: orgProcedure('member.manage')
    .input(s.memberRoleInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => team.updateMemberRole(work, ctx.role, ctx.orgId, input.userId, input.role)),
    ),
  removeMember: orgProcedure('member.manage')
    .input(s.memberRemoveInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => team.removeMember(work, ctx.role, ctx.orgId, input.userId, 'removed', { transferKeysTo: input.transferKeysTo })),
    ),
  /** A member's budget (issue #12): amount null removes it. Owners and admins (only owners for an owner). */
  setBudget: orgProcedure('member.manage')
    .input(teamSetBudgetInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => setMemberBudget(work, ctx.role, ctx.orgId, input.userId, input.amount, input.period)),
    ),
  leave: orgProcedure('org.view')
    .input(s.orgRef)
    .mutation(({ ctx }) => runCommand(ctx.services, ctx.user.id, (work) => team.removeMember(work, ctx.role, ctx.orgId, ctx.user.id, 'left'))),
});
