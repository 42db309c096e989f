/**
 * Connection failures of `pg` clients and pools. A `pg` client whose connection breaks emits
 * 'error'; with no listener, Node turns that into an uncaught exception and the process dies (a
 * PostgreSQL restart took the whole server down). A pool listens only to its idle clients, so a
 * client checked out at that moment (mid-transaction, or between two statements) needs its own.
 */
import type pg from 'pg';

interface Log {
  warn(obj: unknown, msg?: string): void;
}

/**
 * Every client of `pool`, idle or checked out, handles its connection errors: they are logged
 * (once per client) and the client is not reused. The statement that was running rejects; the
 * code holding the client sees that and releases it as broken.
 */
export function handlePoolErrors(pool: pg.Pool, log: Log, what: string): void {
  // Idle clients: the pool's own listener calls this (and drops the client); our listener below logged it already.
  pool.on('error', () => {});
  pool.on('connect', (client) => handleClientErrors(client, log, what));
}

/** A lone client (LISTEN connection, lock holder): its connection errors are logged, never thrown. */
export function handleClientErrors(client: pg.Client | pg.PoolClient, log: Log, what: string): void {
  let reported = false;
  client.on('error', (err) => {
    if (reported) return;
    reported = true;
    log.warn({ err }, `${what}: database connection lost`);
  });
}

const UNAVAILABLE_MESSAGE =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|Connection terminated|connection error and is not queryable|Client was closed|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Timeout acquiring a connection|Unable to acquire a connection/i;

/**
 * Whether `err` means the database cannot be reached right now (restarting, down, out of
 * connections), as opposed to a statement it refused: worth a 503 and a retry, not a 500.
 * Looks through wrappers (MikroORM's DriverException, `cause` chains).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = String((e as { code?: unknown }).code ?? '');
    // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now; 53300: too many connections.
    if (/^(08|57P0[1-3]|53300)/.test(code) || /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT)$/.test(code)) return true;
    if (e instanceof Error && UNAVAILABLE_MESSAGE.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some(isDatabaseUnavailable)) return true;
  }
  return false;
}

/**
 * Whether `err` rolled its transaction back over a conflict with another one (SQLSTATE class 40:
 * deadlock, serialization failure): the same transaction, run again, may well succeed.
 */
export function isTransactionConflict(err: unknown): boolean {
  return /^40/.test(String((err as { code?: unknown } | null)?.code ?? ''));
}
