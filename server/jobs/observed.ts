/**
 * Job runs, measured: `observedWorker(boss).work(...)` is `boss.work(...)` with each handler run
 * counted by outcome (gateway_jobs_total), timed (gateway_job_duration_seconds) and traced (a span
 * per run when tracing is on). A failed run still throws, so pg-boss retries it as before.
 */
import type PgBoss from 'pg-boss';
import { observeJob } from '../observability/metrics.js';
import { traceJob } from '../observability/tracing.js';

export function observedHandler<H extends (jobs: never[]) => Promise<unknown>>(queue: string, handler: H): H {
  return (async (jobs: never[]) => {
    const span = traceJob(queue);
    const started = performance.now();
    try {
      const result = await handler(jobs);
      observeJob(queue, 'completed', (performance.now() - started) / 1000);
      span?.end();
      return result;
    } catch (err) {
      observeJob(queue, 'failed', (performance.now() - started) / 1000);
      span?.end(err instanceof Error ? err.message : String(err));
      throw err;
    }
  }) as H;
}

/** `boss.work` with every handler measured (the handler is always the last argument). */
export function observedWorker(boss: PgBoss): Pick<PgBoss, 'work'> {
  const work = (name: string, ...rest: unknown[]) => {
    const handler = rest.pop() as (jobs: never[]) => Promise<unknown>;
    const args = [...rest, observedHandler(name, handler)] as [PgBoss.WorkHandler<unknown>];
    return boss.work(name, ...args);
  };
  return { work: work as PgBoss['work'] };
}
