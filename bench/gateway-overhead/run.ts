/**
 * Gateway overhead: the same local fake upstream called directly, through our gateway (metering
 * on: every call logged, rolled up and charged) and through Portkey's open-source gateway
 * (`@portkey-ai/gateway`, started locally), under the same load from autocannon. Latencies are
 * taken per response from autocannon's `response` events (sub-millisecond precision; its own
 * histogram rounds to whole milliseconds).
 *
 * Targets: the fake upstream directly; a bare Node proxy (node:http server + undici pool, nothing
 * else: the floor any Node proxy pays on this machine); our gateway; Portkey's.
 *
 * Three loads. Each round runs every load on every target in turn, for BENCH_SECONDS each, and
 * there are ROUNDS short rounds, so the machine's drift (it is shared) hits every target alike.
 * Latency percentiles are taken over the calls of all rounds together:
 * - light: one connection, BENCH_RATE calls/s. autocannon sends each second's quota back to back,
 *   so on one connection a call never waits behind another: the added latency is the gateway's
 *   own work per call.
 * - burst: 8 connections at BENCH_RATE calls/s: up to 8 calls wait on each other.
 * - throughput: BENCH_CONNECTIONS connections at full speed (req/s: the median round).
 * The CPU each process used per call (from /proc) is reported for the light load.
 *
 * Knobs: ENDPOINTS=0 (skip the /v1/messages and /v1/responses targets, each measured against the fake Anthropic called directly), BENCH_RATE (300), BENCH_SECONDS (3), BENCH_CONNECTIONS (32), ROUNDS (8), DATABASE_URL (else
 * an embedded PostgreSQL in a temp dir), PORTKEY=0 to skip Portkey, LOAD=light|burst|throughput
 * (one load only, for profiling), WARMUP_SECONDS (5, full speed, per target), GATEWAY_NODE_ARGS (extra node flags for our gateway's process).
 */
import autocannon from 'autocannon';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { startDatabase } from '../live-fanout/setup.js';
import { startPortkey, startTsChild, type Child } from './processes.js';

const RATE = Number(process.env.BENCH_RATE ?? 300);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 8);
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 5);
const WITH_PORTKEY = process.env.PORTKEY !== '0';
/** LOAD=light|burst|throughput runs only that load (for profiling); the summary then needs all three. */
const ONLY_LOAD = process.env.LOAD;
/** ENDPOINTS=0 leaves out the /v1/messages and /v1/responses targets (and their direct reference). */
const WITH_ENDPOINTS = process.env.ENDPOINTS !== '0';

interface Target {
  name: string;
  url: string;
  /** The endpoint called (default /v1/chat/completions). */
  path?: string;
  /** The target whose latency is subtracted for "added" figures (default: the direct fake upstream). */
  reference?: string;
  headers: Record<string, string>;
  body: string;
  pid: number;
}

interface Run {
  /** Every answered call's latency (ms), so rounds can be pooled. */
  latencies: number[];
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  /** CPU ms per call: the target's own process, PostgreSQL's processes, the fake upstream. */
  cpu: { own: number; postgres: number; upstream: number };
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** CPU time (ms) of the processes whose command line matches. */
function cpuMs(match: (cmdline: string, pid: number) => boolean): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), Number(pid))) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100
}

let upstreamPid = 0;
async function load(t: Target, opts: { seconds: number; connections: number; rate?: number }): Promise<Run> {
  const latencies: number[] = [];
  let errors = 0;
  const instance = autocannon({
    url: `${t.url}${t.path ?? '/v1/chat/completions'}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body,
    connections: opts.connections,
    duration: opts.seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
  });
  (instance as unknown as NodeJS.EventEmitter).on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) latencies.push(ms);
    else errors++;
  });
  const before = [cpuMs((_c, pid) => pid === t.pid), cpuMs((c) => c.startsWith('postgres')), cpuMs((_c, pid) => pid === upstreamPid)];
  const result = await instance;
  const after = [cpuMs((_c, pid) => pid === t.pid), cpuMs((c) => c.startsWith('postgres')), cpuMs((_c, pid) => pid === upstreamPid)];
  const n = Math.max(1, latencies.length);
  latencies.sort((a, b) => a - b);
  return {
    latencies,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    rps: result.requests.average,
    errors: errors + result.errors,
    cpu: { own: (after[0]! - before[0]!) / n, postgres: (after[1]! - before[1]!) / n, upstream: (after[2]! - before[2]!) / n },
  };
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const db = await startDatabase();
const children: Child[] = [];
try {
  const upstream = await startTsChild('upstream-server.ts', {}, 'the fake upstream');
  children.push(upstream);
  upstreamPid = upstream.pid;
  const gateway = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url }, 'our gateway');
  children.push(gateway);
  const [apiKey] = gateway.fields;
  const bare = await startTsChild('bare-proxy-server.ts', { UPSTREAM_URL: upstream.url }, 'the bare proxy');
  children.push(bare);
  const messages = [{ role: 'user', content: 'Say hello to the benchmark [chunks:20]' }];
  const targets: Target[] = [
    { name: 'direct (fake upstream)', url: upstream.url, headers: { authorization: 'Bearer sk-direct' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages }), pid: upstream.pid },
    { name: 'bare Node proxy (floor)', url: bare.url, headers: { authorization: 'Bearer sk-direct' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages }), pid: bare.pid },
    { name: 'our gateway (metered)', url: gateway.url, headers: { authorization: `Bearer ${apiKey}` }, body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages }), pid: gateway.pid },
  ];
  if (WITH_ENDPOINTS) {
    // The other endpoints, each against the fake's Anthropic Messages API called directly (same answer size).
    const anthropicBody = JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 256, messages });
    targets.push(
      { name: 'direct Anthropic messages', url: upstream.url, path: '/v1/messages', headers: { 'x-api-key': 'sk-direct', 'anthropic-version': '2023-06-01' }, body: anthropicBody, pid: upstream.pid },
      {
        name: 'gateway /v1/messages (native)',
        url: gateway.url,
        path: '/v1/messages',
        reference: 'direct Anthropic messages',
        headers: { 'x-api-key': apiKey!, 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_tokens: 256, messages }),
        pid: gateway.pid,
      },
      {
        name: 'gateway /v1/responses (translated)',
        url: gateway.url,
        path: '/v1/responses',
        reference: 'direct Anthropic messages',
        headers: { authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_output_tokens: 256, input: messages[0]!.content }),
        pid: gateway.pid,
      },
      {
        name: 'gateway chat -> Anthropic (translated)',
        url: gateway.url,
        reference: 'direct Anthropic messages',
        headers: { authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_tokens: 256, messages }),
        pid: gateway.pid,
      },
    );
  }
  if (WITH_PORTKEY) {
    const portkey = await startPortkey(18787 + Math.floor(Math.random() * 1000));
    children.push(portkey);
    targets.push({
      name: 'Portkey gateway',
      url: portkey.url,
      headers: { authorization: 'Bearer sk-portkey', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream.url}/v1` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
      pid: portkey.pid,
    });
  }
  const loads = {
    light: { seconds: SECONDS, connections: 1, rate: RATE },
    burst: { seconds: SECONDS, connections: 8, rate: RATE },
    throughput: { seconds: SECONDS, connections: CONNECTIONS },
  } as const;
  type LoadName = keyof typeof loads;
  const runs = new Map<string, Run[]>();
  for (const t of targets) {
    process.stdout.write(`warming up ${t.name}...\n`);
    // Full speed for WARMUP_SECONDS: a few thousand calls, so every target's JIT has compiled its hot
    // path before anything is measured (a light load alone takes tens of seconds to get there).
    await load(t, { seconds: WARMUP_SECONDS, connections: 8 });
  }
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [name, opts] of Object.entries(loads) as [LoadName, (typeof loads)[LoadName]][]) {
      if (ONLY_LOAD && name !== ONLY_LOAD) continue;
      for (const t of targets) {
        const run = await load(t, opts);
        const key = `${t.name}|${name}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
        process.stdout.write(`round ${r} ${name.padEnd(10)} ${t.name.padEnd(24)} p50 ${round(run.p50)} ms, p99 ${round(run.p99)} ms, ${Math.round(run.rps)}/s cpu ${round(run.cpu.own)}/${round(run.cpu.postgres)}\n`);
      }
    }
  }
  if (!ONLY_LOAD) {
    const of = (t: Target, loadName: LoadName) => runs.get(`${t.name}|${loadName}`)!;
    // Latency percentiles over every call of every round (pooled); rates are medians of rounds;
    // CPU per call is the total CPU over the total calls of the light rounds.
    const pooled = (t: Target, loadName: LoadName, q: number) => percentile(of(t, loadName).flatMap((r) => r.latencies).sort((a, b) => a - b), q);
    const cpuPerCall = (t: Target, pick: (r: Run) => number) => {
      const rs = of(t, 'light');
      const calls = rs.reduce((n, r) => n + r.latencies.length, 0);
      return rs.reduce((n, r) => n + pick(r) * Math.max(1, r.latencies.length), 0) / Math.max(1, calls);
    };
    const rows = targets.map((t) => {
      const direct = targets.find((x) => x.name === t.reference) ?? targets[0]!;
      const figs = (loadName: LoadName) => {
        const p50 = pooled(t, loadName, 0.5);
        const p99 = pooled(t, loadName, 0.99);
        const isReference = t.url === direct.url && t.path === direct.path;
        return {
          p50: round(p50),
          p99: round(p99),
          addedP50: isReference ? 0 : round(p50 - pooled(direct, loadName, 0.5)),
          addedP99: isReference ? 0 : round(p99 - pooled(direct, loadName, 0.99)),
        };
      };
      return {
        target: t.name,
        light: figs('light'),
        burst: figs('burst'),
        rps: Math.round(median(of(t, 'throughput').map((r) => r.rps))),
        cpuPerCall: { own: round(cpuPerCall(t, (r) => r.cpu.own)), postgres: round(cpuPerCall(t, (r) => r.cpu.postgres)), upstream: round(cpuPerCall(t, (r) => r.cpu.upstream)) },
        errors: [...runs.entries()].filter(([k]) => k.startsWith(`${t.name}|`)).reduce((n, [, rs]) => n + rs.reduce((m, x) => m + x.errors, 0), 0),
      };
    });
    console.log(`\n${ROUNDS} rounds of ${SECONDS} s per load and target, interleaved; latency percentiles over all rounds' calls, req/s the median round. light = 1 connection at ${RATE}/s; burst = 8 connections at ${RATE}/s; throughput = ${CONNECTIONS} connections.\n`);
    console.log('| target | light p50 ms | light p99 ms | added p50 | added p99 | burst p50 ms | burst p99 ms | burst added p50 | burst added p99 | max req/s | CPU ms per call (own / PostgreSQL) | errors |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.target} | ${r.light.p50} | ${r.light.p99} | ${r.light.addedP50} | ${r.light.addedP99} | ${r.burst.p50} | ${r.burst.p99} | ${r.burst.addedP50} | ${r.burst.addedP99} | ${r.rps} | ${r.cpuPerCall.own} / ${r.cpuPerCall.postgres} | ${r.errors} |`,
      );
    }
    writeFileSync(new URL('./last-run.json', import.meta.url), JSON.stringify({ at: new Date().toISOString(), rate: RATE, seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, rows }, null, 2) + '\n');
  }
} finally {
  for (const c of children.reverse()) await c.stop();
  await db.stop();
}
