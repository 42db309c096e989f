/**
 * Live fan-out benchmark (bench/README.md says how to read it): the real server with 200
 * organizations x 10 members, one WebSocket subscriber per member in a separate client process,
 * then two phases at a steady rate:
 *   1. committed: project.update through runCommand (transaction, audit, stored event, NOTIFY),
 *      latency from the moment its COMMIT is issued to the subscriber's onData;
 *   2. fan-out only: the same event handed straight to the bus (no database), latency from the
 *      hand-off to onData. The difference between the phases is what the database path costs.
 * Plus the server's memory per idle subscriber.
 *
 * Environment: DATABASE_URL (optional; a throwaway database is created on it, else an embedded
 * PostgreSQL in a temp dir), BENCH_ORGS (200), BENCH_MEMBERS (10), BENCH_RATE (events/s, 200),
 * BENCH_SECONDS (per phase, 30), BENCH_MAX_IN_FLIGHT (concurrent commands, 64),
 * BENCH_CONNECT_CONCURRENCY (100), BENCH_HEAP_SNAPSHOTS (a directory: V8 heap snapshots before
 * connecting and with every subscriber idle, for heap-diff.ts), BENCH_CPU_PROFILE (a directory:
 * a .cpuprofile of the server process per phase).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import pg from 'pg';
import vm from 'node:vm';
import type { BuiltApp } from '../../server/app.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { updateProject } from '../../server/modules/projects/service.js';
import type { FromClients, ToClients } from './clients.js';
import { seed, startDatabase, startServer, type BenchOrg } from './setup.js';

const ORGS = Number(process.env.BENCH_ORGS ?? 200);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const MAX_IN_FLIGHT = Number(process.env.BENCH_MAX_IN_FLIGHT ?? 64);
const CONNECT_CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 100);
const WARMUP_SUBSCRIBERS = Math.min(100, ORGS * MEMBERS);
const LOOP_SAMPLE_MS = 10;
/** Phase 2's sequence numbers start here, so the two phases never share one. */
const FANOUT_SEQ_BASE = 10_000_000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** CLOCK_MONOTONIC in microseconds: the same clock in the client process. */
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (...args: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...args);

// ---------------------------------------------------------------- client process

class Clients {
  private readonly child: ChildProcess;
  private readonly waiting: ((m: FromClients) => void)[] = [];

  constructor() {
    // Built (npm run bench:live-fanout bundles both files, like `npm start` runs the server) or from source with tsx.
    const fromSource = import.meta.url.endsWith('.ts');
    const file = fileURLToPath(new URL(fromSource ? './clients.ts' : './clients.js', import.meta.url));
    this.child = fork(file, [], { execArgv: fromSource ? ['--import', 'tsx'] : [], stdio: 'inherit' });
    this.child.on('message', (m: FromClients) => this.waiting.shift()?.(m));
  }

  get pid() {
    return this.child.pid!;
  }

  next<T extends FromClients['type']>(type: T): Promise<Extract<FromClients, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiting.push((m) => (m.type === type ? resolve(m as Extract<FromClients, { type: T }>) : reject(new Error(`expected ${type}, got ${m.type}`))));
    });
  }

  request<T extends FromClients['type']>(message: ToClients, reply: T) {
    const answer = this.next(reply);
    this.child.send(message);
    return answer;
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'exit' } satisfies ToClients);
    await Promise.race([exited, sleep(5_000).then(() => this.child.kill('SIGKILL'))]);
  }
}

// ---------------------------------------------------------------- measurements

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

function percentiles(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);
  const ms = (us: number) => +(us / 1000).toFixed(1);
  return { p50: ms(at(50)), p90: ms(at(90)), p99: ms(at(99)), p999: ms(at(99.9)), max: ms(sorted[sorted.length - 1] ?? NaN) };
}

/** Busy share of all CPUs (every process: server, clients, PostgreSQL, anything else) from /proc/stat. */
function machineCpuMeter() {
  const read = () => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const idle = fields[3]! + (fields[4] ?? 0);
      return { idle, total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  };
  const start = read();
  return {
    busyPercent(): number | null {
      const end = read();
      if (!start || !end || end.total === start.total) return null;
      return Math.round((1 - (end.idle - start.idle) / (end.total - start.total)) * 100);
    },
  };
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function startProfile(): Promise<Session | null> {
  if (!process.env.BENCH_CPU_PROFILE) return null;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

async function stopProfile(session: Session | null, name: string) {
  if (!session) return;
  const { profile } = await session.post('Profiler.stop');
  const file = join(process.env.BENCH_CPU_PROFILE!, `server-${name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
  log('CPU profile:', file);
}

/**
 * Calls `launch(seq)` for `total` events at RATE per second (never more than MAX_IN_FLIGHT
 * unfinished at once), then collects what the subscribers got. `sentUs[seq]` must be set by
 * `launch` at the moment the event counts as sent (the commit, or the bus hand-off).
 */
async function runPhase(name: string, clients: Clients, seqBase: number, launch: (seq: number, sentUs: Map<number, number>) => Promise<unknown> | void) {
  const total = Math.round(RATE * SECONDS);
  const sentUs = new Map<number, number>();
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  const machineCpu = machineCpuMeter();
  const pending = new Set<Promise<unknown>>();
  let failures = 0;
  let throttled = 0;
  // Start clean: the harness's own garbage (the previous phase's results) is not the server's pause.
  gc();
  await sleep(1_000);
  const profile = await startProfile();
  const cpuBefore = process.cpuUsage();
  loopDelay.enable();
  const startedAt = performance.now();
  const interval = 1000 / RATE;
  for (let i = 0; i < total; ) {
    while (i < total && startedAt + i * interval <= performance.now()) {
      if (pending.size >= MAX_IN_FLIGHT) {
        throttled++;
        await Promise.race(pending);
        continue;
      }
      const result = launch(seqBase + i++, sentUs);
      if (result) {
        const p: Promise<unknown> = result
          .catch((err: unknown) => {
            if (++failures <= 5) log(`${name}: event failed:`, err);
          })
          .finally(() => pending.delete(p));
        pending.add(p);
      }
    }
    const wait = startedAt + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(pending);
  const wallMs = performance.now() - startedAt;
  loopDelay.disable();
  const cpu = process.cpuUsage(cpuBefore);
  const machineBusy = machineCpu.busyPercent();
  await stopProfile(profile, name);
  await sleep(2_000); // stragglers

  const results = await clients.request({ type: 'results' }, 'results');
  const latencies: number[] = [];
  /** Second of the phase (by send time) -> deliveries slower than 100 ms: one stall, or spread out? */
  const slowBySecond = new Map<number, number>();
  let unmatched = 0;
  const phaseStartUs = nowUs() - (performance.now() - startedAt) * 1000;
  for (let i = 0; i < results.seqs.length; i++) {
    const sent = sentUs.get(results.seqs[i]!);
    if (sent === undefined) {
      unmatched++;
      continue;
    }
    const latency = results.receivedUs[i]! - sent;
    latencies.push(latency);
    if (latency > 100_000) {
      const second = Math.floor((sent - phaseStartUs) / 1e6);
      slowBySecond.set(second, (slowBySecond.get(second) ?? 0) + 1);
    }
  }
  return {
    phase: name,
    eventsSent: sentUs.size,
    eventsFailed: failures,
    eventsPerSecond: +(sentUs.size / (wallMs / 1000)).toFixed(1),
    producerThrottled: throttled,
    deliveriesExpected: sentUs.size * MEMBERS,
    deliveriesReceived: latencies.length,
    deliveriesUnmatched: unmatched,
    deliveriesPerSecond: +(latencies.length / (wallMs / 1000)).toFixed(0),
    latencyMs: percentiles(latencies),
    deliveriesOver100msBySecond: Object.fromEntries([...slowBySecond].sort((x, y) => x[0] - y[0])),
    serverCpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / (wallMs * 1000)) * 100),
    // The histogram counts the sampling interval too; what is left is the delay.
    serverEventLoopDelayMs: {
      p50: +Math.max(0, loopDelay.percentile(50) / 1e6 - LOOP_SAMPLE_MS).toFixed(1),
      p99: +Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_SAMPLE_MS).toFixed(1),
      max: +Math.max(0, loopDelay.max / 1e6 - LOOP_SAMPLE_MS).toFixed(1),
    },
    machineCpuBusyPercent: machineBusy,
    clientProcessCpuSeconds: +((results.cpuUserMs + results.cpuSystemMs) / 1000).toFixed(1),
    clientErrors: results.errors,
  };
}

/** Marks of units of work in flight, called right before their COMMIT goes to PostgreSQL and once it is done. */
const commitMarks = new WeakMap<object, { issued(): void; done(): void }>();
/** How long each COMMIT took (issued to acknowledged), in microseconds: PostgreSQL's share of the latency. */
const commitUs: number[] = [];

/**
 * What PostgreSQL's backends of the bench database wait on, sampled every 20 ms while a phase runs
 * (pg_stat_activity; `Lock:object` is the database-wide lock every committing transaction that
 * sent a NOTIFY takes, so such commits, WAL flush included, happen one at a time).
 */
async function waitSampler(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-wait-sampler' });
  await client.connect();
  const counts = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ w: string; n: number }>(
        `select coalesce(wait_event_type || ':' || wait_event, 'cpu') as w, count(*)::int as n from pg_stat_activity
          where datname = current_database() and state = 'active' and pid <> pg_backend_pid() group by 1`,
      );
      samples++;
      for (const r of rows) counts.set(r.w, (counts.get(r.w) ?? 0) + r.n);
      await sleep(20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await client.end();
      // Average number of backends in each state (active ones only), largest first.
      return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([w, n]) => [w, +(n / Math.max(1, samples)).toFixed(2)]));
    },
  };
}

function committedUpdates(built: BuiltApp, orgs: BenchOrg[]) {
  const deps = built.services;
  return (seq: number, sentUs: Map<number, number>) => {
    const org = orgs[seq % orgs.length]!;
    return runCommand(deps, org.ownerId, async (work) => {
      // The event counts as sent when its COMMIT is issued: the latency includes the commit itself
      // (WAL flush) and the NOTIFY hop, and never starts after the subscriber could have it.
      let issuedUs = 0;
      commitMarks.set(work.em, {
        issued: () => void sentUs.set(seq, (issuedUs = nowUs())),
        done: () => void commitUs.push(nowUs() - issuedUs),
      });
      return updateProject(work, org.projectId, { name: `bench ${seq}` });
    });
  };
}

function busOnly(built: BuiltApp, orgs: BenchOrg[]) {
  return (seq: number, sentUs: Map<number, number>) => {
    const org = orgs[seq % orgs.length]!;
    sentUs.set(seq, nowUs());
    built.services.bus.deliverLocal({ type: 'project.updated', projectId: org.projectId, name: `bench ${seq}`, orgId: org.id, actorId: null, at: new Date().toISOString() });
  };
}

// ---------------------------------------------------------------- main

async function main() {
  log(`live fan-out: ${ORGS} orgs x ${MEMBERS} members = ${ORGS * MEMBERS} subscribers, ${RATE} events/s, ${SECONDS} s per phase`);
  const loadBefore = loadavg()[0]!;
  const database = await startDatabase();
  const server = await startServer(database.url);
  const { built, url } = server;
  const clients = new Clients();
  try {
    await clients.next('hello');
    let t = Date.now();
    const { orgs, subscribers } = await seed(built, database.url, ORGS, MEMBERS);
    log(`seeded in ${Date.now() - t} ms; server ${url} in pid ${process.pid}, clients in pid ${clients.pid}`);

    // Warm up (JIT, pools, first-connection allocations), then measure from a settled baseline.
    await clients.request({ type: 'connect', url, subscribers: subscribers.slice(0, WARMUP_SUBSCRIBERS), concurrency: CONNECT_CONCURRENCY }, 'connected');
    await clients.request({ type: 'disconnect' }, 'disconnected');
    const wss = built.app.websocketServer;
    await waitFor(() => wss.clients.size === 0 && built.services.bus.listenerCount() === 0, 30_000, 'warm-up connections to close');
    await sleep(1_000);
    const before = memory();
    const snapshots = process.env.BENCH_HEAP_SNAPSHOTS;
    if (snapshots) log('heap snapshot:', v8.writeHeapSnapshot(join(snapshots, 'before-connect.heapsnapshot')));

    t = Date.now();
    const connected = await clients.request({ type: 'connect', url, subscribers, concurrency: CONNECT_CONCURRENCY }, 'connected');
    if (connected.errors.length) log('subscribe errors:', connected.errors);
    await waitFor(() => built.services.bus.listenerCount() === subscribers.length, 30_000, 'every subscription on the bus');
    const connectMs = Date.now() - t;
    log(`${connected.count} subscribers connected and attached in ${connectMs} ms (${wss.clients.size} sockets)`);
    await sleep(3_000);
    const idle = memory();
    if (snapshots) log('heap snapshot:', v8.writeHeapSnapshot(join(snapshots, 'idle-subscribers.heapsnapshot')));
    const n = subscribers.length;
    const kb = (bytes: number) => +(bytes / n / 1024).toFixed(1);
    const memoryPerIdleSubscriberKB = {
      heapUsed: kb(idle.heapUsed - before.heapUsed),
      external: kb(idle.external - before.external),
      rss: kb(idle.rss - before.rss),
    };
    log('memory per idle subscriber (KB):', memoryPerIdleSubscriberKB);
    await clients.request({ type: 'results' }, 'results'); // drop the connect-time presence events

    built.orm.em.getEventManager().registerSubscriber({
      beforeTransactionCommit: (args) => commitMarks.get(args.em)?.issued(),
      afterTransactionCommit: (args) => commitMarks.get(args.em)?.done(),
    });
    log(`phase 1: committed project.update through runCommand, ${RATE}/s for ${SECONDS} s`);
    const sampler = await waitSampler(database.url);
    const committedRun = await runPhase('committed', clients, 0, committedUpdates(built, orgs));
    const committed = { ...committedRun, commitMs: percentiles(commitUs), postgresActiveBackendsByWait: await sampler.stop() };
    log(`phase 2: fan-out only (bus hand-off, no database), ${RATE}/s for ${SECONDS} s`);
    const fanout = await runPhase('fanout', clients, FANOUT_SEQ_BASE, busOnly(built, orgs));

    const summary = {
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
      loadAverage1mBeforeAndAfter: [+loadBefore.toFixed(2), +loadavg()[0]!.toFixed(2)],
      subscribers: n,
      organizations: ORGS,
      connectMs,
      memoryPerIdleSubscriberKB,
      heapMB: { before: +(before.heapUsed / 2 ** 20).toFixed(1), idle: +(idle.heapUsed / 2 ** 20).toFixed(1) },
      phases: [committed, fanout],
    };
    log('results:\n' + JSON.stringify(summary, null, 2));
    // Issue #15's targets: at most 20 KB per idle subscription, committed-phase p99 at most 50 ms.
    const memoryOk = memoryPerIdleSubscriberKB.heapUsed + memoryPerIdleSubscriberKB.external <= 20;
    const complete = (p: typeof committedRun) => p.deliveriesReceived === p.deliveriesExpected && p.eventsFailed === 0;
    const ok = memoryOk && committed.latencyMs.p99 <= 50 && complete(committed) && complete(fanout);
    log(
      `memory per idle subscriber ${memoryOk ? 'met' : 'MISSED'} (<= 20 KB); committed p99 ${committed.latencyMs.p99 <= 50 ? 'met' : 'MISSED'} (<= 50 ms); ` +
        `every delivery arrived: ${complete(committed) && complete(fanout) ? 'yes' : 'NO'}`,
    );
    process.exitCode = ok ? 0 : 1;
    await clients.request({ type: 'disconnect' }, 'disconnected').catch(() => {});
  } finally {
    await clients.stop();
    await server.stop();
    await database.stop();
  }
}

await main();
