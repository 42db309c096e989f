import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as projects from './service.js';

export const projectRouter = router({
  list: orgProcedure('org.view').input(s.orgRef).query(({ ctx }) => projects.listProjects(ctx.em, ctx.orgId)),
  create: orgProcedure('project.manage')
    .input(s.projectCreateInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => projects.createProject(work, ctx.orgId, input.name))),
  update: orgProcedure('project.manage')
    .input(s.projectUpdateInput)
    .mutation(({ ctx, input }) => {
      const { projectId, ...patch } = input;
      return runCommand(ctx.services, ctx.user.id, (work) => projects.updateProject(work, projectId, patch));
    }),
  delete: orgProcedure('project.manage')
    .input(s.projectRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => projects.deleteProject(work, input.projectId))),
});
