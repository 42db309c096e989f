import { router, orgProcedure } from '../../trpc/init.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as s from '../../../shared/webhooks.js';
import * as webhooks from './service.js';

export const webhookRouter = router({
  list: orgProcedure('webhook.manage').input(s.webhookListInput).query(({ ctx }) => webhooks.listWebhooks(ctx.em, ctx.orgId)),
  create: orgProcedure('webhook.manage')
    .input(s.webhookCreateInput)
    .mutation(async ({ ctx, input }) => {
      await webhooks.vetWebhookUrl(input.url, ctx.services.config.gateway.allowPrivateUpstreams);
      return runCommand(ctx.services, ctx.user.id, (work) => webhooks.createWebhook(work, ctx.services.secretBox, { ...input, orgId: ctx.orgId, userId: ctx.user.id }), ctx.em);
    }),
  update: orgProcedure('webhook.manage')
    .input(s.webhookUpdateInput)
    .mutation(async ({ ctx, input }) => {
      await webhooks.vetWebhookUrl(input.url, ctx.services.config.gateway.allowPrivateUpstreams);
      return runCommand(ctx.services, ctx.user.id, (work) => webhooks.updateWebhook(work, input), ctx.em);
    }),
  delete: orgProcedure('webhook.manage')
    .input(s.webhookRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => webhooks.deleteWebhook(work, input.webhookId), ctx.em)),
  rotateSecret: orgProcedure('webhook.manage')
    .input(s.webhookRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => webhooks.rotateWebhookSecret(work, ctx.services.secretBox, input.webhookId), ctx.em)),
  sendTest: orgProcedure('webhook.manage')
    .input(s.webhookRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => webhooks.sendTestWebhook(work, input.webhookId), ctx.em)),
  deliveries: orgProcedure('webhook.manage').input(s.webhookDeliveriesInput).query(({ ctx, input }) => webhooks.listDeliveries(ctx.em, input)),
  redeliver: orgProcedure('webhook.manage')
    .input(s.webhookRedeliverInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => webhooks.redeliverWebhook(work, input.deliveryId), ctx.em)),
});
