/** pg-boss workers. Cron schedules are kept in PostgreSQL, so several instances never double-run them. */
import PgBoss from 'pg-boss';
import type { Services } from '../trpc/context.js';
import { sweepAutoTopUps } from '../modules/billing/auto-top-up.js';
import { runMaintenance } from './maintenance.js';
import { purgeExpiredLogs } from '../modules/usage/retention.js';

export const MAINTENANCE_QUEUE = 'maintenance';
export const AUTO_TOP_UP_QUEUE = 'auto-top-up-sweep';
export const LOG_RETENTION_QUEUE = 'gateway-log-retention';
export const EMAIL_RETRY_QUEUE = 'email-retry';

export async function startJobs(databaseUrl: string, services: Services): Promise<PgBoss> {
  const { orm, log } = services;
  const boss = new PgBoss({ connectionString: databaseUrl, max: 4 });
  boss.on('error', (err) => log.error({ err }, 'job queue error'));
  await boss.start();
  await boss.createQueue(MAINTENANCE_QUEUE);
  await boss.schedule(MAINTENANCE_QUEUE, '*/10 * * * *', {}, { singletonKey: MAINTENANCE_QUEUE });
  await boss.work(MAINTENANCE_QUEUE, async () => {
    const removed = await runMaintenance(orm.em.fork());
    log.info({ removed }, 'maintenance done');
  });
  // The safety net behind the in-process trigger: due top-ups and attempts stuck mid-way.
  await boss.createQueue(AUTO_TOP_UP_QUEUE);
  await boss.schedule(AUTO_TOP_UP_QUEUE, '* * * * *', {}, { singletonKey: AUTO_TOP_UP_QUEUE });
  await boss.work(AUTO_TOP_UP_QUEUE, async () => {
    await sweepAutoTopUps(services);
  });
  // Request logs past their plan/level window (rollups stay), and expired cached responses.
  await boss.createQueue(LOG_RETENTION_QUEUE);
  await boss.schedule(LOG_RETENTION_QUEUE, '*/30 * * * *', {}, { singletonKey: LOG_RETENTION_QUEUE });
  await boss.work(LOG_RETENTION_QUEUE, async () => {
    const purged = await purgeExpiredLogs(orm.em.fork());
    log.info(purged, 'request log retention done');
  });
  // Emails whose delivery failed, or never happened, when their next attempt is due.
  await boss.createQueue(EMAIL_RETRY_QUEUE);
  await boss.schedule(EMAIL_RETRY_QUEUE, '* * * * *', {}, { singletonKey: EMAIL_RETRY_QUEUE });
  await boss.work(EMAIL_RETRY_QUEUE, async () => {
    const attempted = await services.mailer.deliverDue();
    if (attempted > 0) log.info({ attempted }, 'due emails attempted');
  });
  return boss;
}
