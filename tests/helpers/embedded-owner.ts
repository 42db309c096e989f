/**
 * A process that starts the embedded PostgreSQL on PG_DATA_DIR / PG_PORT and then just lives, as
 * `npm start` does: the orphaned-postmaster test SIGKILLs it and starts again on the same directory.
 */
import { startEmbeddedPostgres } from '../../server/db/embedded.js';

await startEmbeddedPostgres({ dataDir: process.env.PG_DATA_DIR!, port: Number(process.env.PG_PORT) });
process.stdout.write('READY\n');
setInterval(() => {}, 1 << 30);
