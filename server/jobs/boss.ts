/**
 * pg-boss workers, on the services' queue (server/jobs/queue.ts). Cron schedules are kept in
 * PostgreSQL, so several instances never double-run them. To add a background job: a queue name
 * here, `createQueue`, then `schedule` (cron) and/or `jobs.work`, with the handler taking `services`.
 */
import type PgBoss from 'pg-boss';
import type { Services } from '../services.js';
import { sweepAutoTopUps } from '../modules/billing/auto-top-up.js';
import { runMaintenance } from './maintenance.js';
import { purgeExpiredLogs } from '../modules/usage/retention.js';
import { EMAIL_QUEUE } from '../email/mailer.js';
import { WEBHOOK_QUEUE, WEBHOOK_SWEEP_QUEUE } from '../modules/webhooks/dispatcher.js';
import { observedWorker } from './observed.js';

export const MAINTENANCE_QUEUE = 'maintenance';
export const AUTO_TOP_UP_QUEUE = 'auto-top-up-sweep';
export const LOG_RETENTION_QUEUE = 'gateway-log-retention';
/** Emails pending a minute after they were written and never handed to pg-boss (see Mailer.handOverStranded). */
export const EMAIL_SWEEP_QUEUE = 'email-outbox-sweep';

export async function startJobs(services: Services): Promise<PgBoss> {
  const { orm, log, queue, mailer } = services;
  const boss = await queue.boss();
  // Workers go through `jobs.work`: each run counted, timed and traced (server/jobs/observed.ts).
  const jobs = observedWorker(boss);
  await boss.createQueue(MAINTENANCE_QUEUE);
  await boss.schedule(MAINTENANCE_QUEUE, '*/10 * * * *', {}, { singletonKey: MAINTENANCE_QUEUE });
  await jobs.work(MAINTENANCE_QUEUE, async () => {
    const removed = await runMaintenance(orm.em.fork());
    log.info({ removed }, 'maintenance done');
  });
  // The safety net behind the in-process trigger: due top-ups and attempts stuck mid-way.
  await boss.createQueue(AUTO_TOP_UP_QUEUE);
  await boss.schedule(AUTO_TOP_UP_QUEUE, '* * * * *', {}, { singletonKey: AUTO_TOP_UP_QUEUE });
  await jobs.work(AUTO_TOP_UP_QUEUE, async () => {
    await sweepAutoTopUps(services);
  });
  // Request logs past their plan/level window (rollups stay), and expired cached responses.
  await boss.createQueue(LOG_RETENTION_QUEUE);
  await boss.schedule(LOG_RETENTION_QUEUE, '*/30 * * * *', {}, { singletonKey: LOG_RETENTION_QUEUE });
  await jobs.work(LOG_RETENTION_QUEUE, async () => {
    const purged = await purgeExpiredLogs(orm.em.fork());
    log.info(purged, 'request log retention done');
  });
  // Email delivery: one job per outbox email; pg-boss retries a failed send with backoff.
  await queue.ensureQueue(EMAIL_QUEUE);
  await jobs.work<{ id: string }>(EMAIL_QUEUE, { includeMetadata: true, pollingIntervalSeconds: mailer.retry.pollingIntervalSeconds }, async ([job]) => {
    if (job) await mailer.attempt(job);
  });
  // The hand-written retry schedule this replaced ran as 'email-retry'; its cron row may remain.
  await boss.unschedule('email-retry').catch(() => {});
  await boss.createQueue(EMAIL_SWEEP_QUEUE);
  await boss.schedule(EMAIL_SWEEP_QUEUE, '*/5 * * * *', {}, { singletonKey: EMAIL_SWEEP_QUEUE });
  await jobs.work(EMAIL_SWEEP_QUEUE, async () => {
    const handed = await mailer.handOverStranded();
    if (handed > 0) log.info({ handed }, 'stranded emails handed to the job queue');
  });
  // Webhooks (docs/webhooks.md): the dispatcher sends at commit (LISTEN); pg-boss wakes each
  // endpoint's queue at its retry's due time; the sweep catches what both missed.
  await queue.ensureQueue(WEBHOOK_QUEUE);
  await jobs.work<{ endpointId: string }>(WEBHOOK_QUEUE, { pollingIntervalSeconds: services.config.webhooks.pollingIntervalSeconds, batchSize: 20 }, async (batch) => {
    for (const job of batch) services.webhooks.kick(job.data.endpointId);
  });
  await boss.createQueue(WEBHOOK_SWEEP_QUEUE);
  await boss.schedule(WEBHOOK_SWEEP_QUEUE, '* * * * *', {}, { singletonKey: WEBHOOK_SWEEP_QUEUE });
  await jobs.work(WEBHOOK_SWEEP_QUEUE, async () => {
    await services.webhooks.sweep();
  });
  await services.webhooks.start();
  return boss;
}
