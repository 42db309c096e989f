import { router, authedProcedure, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as orgs from './service.js';
import { organizationCreationLimit, organizationLimits } from './plan-limits.js';

export const organizationRouter = router({
  list: authedProcedure.query(({ ctx }) => orgs.listOrganizationsForUser(ctx.em, ctx.user.id)),
  create: authedProcedure
    .input(s.orgCreateInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => orgs.createOrganization(work, ctx.user.id, input))),
  /** How many organizations the user owns and may own; `reason` is the refusal creating one would get. */
  creationLimit: authedProcedure.query(({ ctx }) => organizationCreationLimit(ctx.em, ctx.user.id)),
  /** The organization's plan limits (projects used and allowed; `reason` when at the limit). */
  limits: orgProcedure('org.view')
    .input(s.orgRef)
    .query(({ ctx }) => organizationLimits(ctx.em, ctx.orgId)),
  get: orgProcedure('org.view')
    .input(s.orgRef)
    .query(({ ctx }) => orgs.getOrganization(ctx.em, ctx.orgId, ctx.role)),
  update: orgProcedure('org.rename')
    .input(s.orgUpdateInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => orgs.updateOrganization(work, ctx.orgId, ctx.role, input))),
  delete: orgProcedure('org.delete')
    .input(s.orgDeleteInput)
    .mutation(({ ctx, input }) => orgs.deleteOrganization(ctx.services, ctx.user.id, ctx.orgId, input.confirmName)),
  /** What deleting does to the organization's money (credits forfeited, subscription canceled), for the confirmation. */
  deletionPreview: orgProcedure('org.delete')
    .input(s.orgRef)
    .query(({ ctx }) => orgs.deletionPreview(ctx.em, ctx.orgId)),
});
