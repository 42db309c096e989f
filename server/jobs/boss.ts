/** pg-boss workers. Cron schedules are kept in PostgreSQL, so several instances never double-run them. */
import PgBoss from 'pg-boss';
import type { MikroORM } from '@mikro-orm/postgresql';
import { runMaintenance } from './maintenance.js';

export const MAINTENANCE_QUEUE = 'maintenance';

export async function startJobs(databaseUrl: string, orm: MikroORM, log: { info(o: unknown, m?: string): void; error(o: unknown, m?: string): void }): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: databaseUrl, max: 4 });
  boss.on('error', (err) => log.error({ err }, 'job queue error'));
  await boss.start();
  await boss.createQueue(MAINTENANCE_QUEUE);
  await boss.schedule(MAINTENANCE_QUEUE, '*/10 * * * *', {}, { singletonKey: MAINTENANCE_QUEUE });
  await boss.work(MAINTENANCE_QUEUE, async () => {
    const removed = await runMaintenance(orm.em.fork());
    log.info({ removed }, 'maintenance done');
  });
  return boss;
}
