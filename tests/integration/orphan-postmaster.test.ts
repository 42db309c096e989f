/**
 * After a kill -9 of the server, its embedded postmaster keeps running on the data directory (or
 * leaves postmaster.pid behind). The next start must come up anyway, saying what it did; a
 * postmaster a live server still owns is left alone; a failed start says why (never `undefined`).
 * Its own embedded PostgreSQL in a temp directory; the shared test database is not touched.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedPostgresError, readPostmasterPid, startEmbeddedPostgres } from '../../server/db/embedded.js';
import { eventually } from '../helpers/live.js';

const dataDir = mkdtempSync(join(tmpdir(), 'gateway-orphan-pg-'));
const pgDir = join(dataDir, 'postgres');
const port = 20000 + Math.floor(Math.random() * 20000);
const ownerScript = fileURLToPath(new URL('../helpers/embedded-owner.ts', import.meta.url));
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  // Whatever is still running on the directory (a failed assertion) must not outlive the test.
  const left = readPostmasterPid(pgDir);
  if (left?.pid) {
    try {
      process.kill(left.pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

const isRunning = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function startOwner(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ownerScript], { env: { ...process.env, PG_DATA_DIR: dataDir, PG_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await eventually(() => out.includes('READY') || child.exitCode !== null, 60_000, 'the owning process to start PostgreSQL');
  if (!out.includes('READY')) throw new Error(`the owning process failed:\n${out}`);
  return child;
}

describe('a postmaster left behind by a killed server', () => {
  it('is refused while its server lives, stopped once it is gone, and the next start comes up', async () => {
    const owner = await startOwner();
    const orphan = readPostmasterPid(pgDir)!;
    expect(orphan.port).toBe(port);
    expect(isRunning(orphan.pid)).toBe(true);

    // Its server is alive: a second start on the directory must not take its database away.
    const refused = await startEmbeddedPostgres({ dataDir, port, notice: () => {} }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(EmbeddedPostgresError);
    expect(String((refused as Error).message)).toMatch(new RegExp(`already running \\(pid ${orphan.pid}.*another server process \\(pid ${owner.pid}`));
    expect(isRunning(orphan.pid)).toBe(true);

    // kill -9: the postmaster outlives its owner.
    owner.kill('SIGKILL');
    await eventually(() => owner.exitCode !== null || owner.signalCode !== null, 10_000, 'the owner to die');
    expect(isRunning(orphan.pid)).toBe(true);

    const notices: string[] = [];
    const db = await startEmbeddedPostgres({ dataDir, port, notice: (m) => notices.push(m) });
    try {
      expect(notices.join('\n')).toMatch(new RegExp(`postmaster \\(pid ${orphan.pid}, port ${port}\\) was left running .* stopping it`));
      expect(isRunning(orphan.pid)).toBe(false);
      const now = readPostmasterPid(pgDir)!;
      expect(now.pid).not.toBe(orphan.pid);
      expect(await answers(db.url)).toBe(true);
    } finally {
      await db.stop();
    }
  }, 120_000);

  it('removes a stale postmaster.pid whose pid is some other process', async () => {
    expect(existsSync(join(pgDir, 'PG_VERSION'))).toBe(true);
    const other = spawn('sleep', ['60']);
    children.push(other);
    // A copy of a real pid file, pointing at a live process that is not PostgreSQL (pid reuse after a reboot).
    writeFileSync(join(pgDir, 'postmaster.pid'), `${other.pid}\n${pgDir}\n${Math.floor(Date.now() / 1000)}\n${port}\n/tmp\nlocalhost\n  0 0\nready\n`);
    const notices: string[] = [];
    const db = await startEmbeddedPostgres({ dataDir, port, notice: (m) => notices.push(m) });
    try {
      expect(notices.join('\n')).toMatch(/removing a stale .*postmaster\.pid \(pid \d+ is not running PostgreSQL\)/);
      expect(await answers(db.url)).toBe(true);
    } finally {
      await db.stop();
      other.kill('SIGKILL');
    }
  }, 60_000);

  it('says why when PostgreSQL cannot start, instead of `undefined`', async () => {
    const conf = join(pgDir, 'postgresql.conf');
    const original = readFileSync(conf, 'utf8');
    appendFileSync(conf, '\nshared_buffers = banana\n');
    try {
      const err = await startEmbeddedPostgres({ dataDir, port, notice: () => {} }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as Error).message).toMatch(/did not start/);
      expect((err as Error).message).toMatch(/shared_buffers/);
    } finally {
      writeFileSync(conf, original);
    }
  }, 60_000);
});
