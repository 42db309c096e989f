/**
 * Gateway overhead, per call: the same local fake upstream called directly, through a bare Node
 * proxy (the floor any Node proxy pays here), through our gateway (metering on: every call logged,
 * rolled up and charged) and through Portkey's open-source gateway (`@portkey-ai/gateway`, started
 * locally), in the same interleaved rounds. bench/README.md says how to read it.
 *
 * What a target adds to a call is measured per call: the fake upstream (upstream-server.ts) logs
 * each request's own service time (its arrival to its answer's last byte, and to its first byte),
 * keyed by a unique `[bench:<id>]` the bench writes into each call's prompt; the bench's own client
 * (undici) times each call from sending it to its answer's last byte. added_i = client latency_i -
 * the fake's service time_i, so p50/p99 are percentiles of what was added (a distribution), not
 * differences of percentiles. The direct target's "added" is the floor of the method itself (the
 * client, one loopback hop, Node's HTTP parsing on both ends).
 *
 * Loads, each run on every target in turn for BENCH_SECONDS, ROUNDS times (the machine's drift
 * hits every target alike); percentiles are over the calls of all rounds together:
 * - light: one connection; each second, BENCH_RATE calls back to back (a call never waits behind
 *   another): what is added is the target's own work per call. CPU per call is read here.
 * - burst: 8 connections sharing each second's BENCH_RATE calls: up to 8 calls wait on each other.
 * - stream: as light, with `stream: true`, 20 chunks the fake writes STREAM_GAP_MS apart (as a
 *   model's tokens come, not in one packet): added time to first token (client's time to the first
 *   content chunk - the fake's time to its first chunk), added time to the last chunk, and each
 *   chunk's trip from the fake's write to the client's read (both read CLOCK_MONOTONIC, which the
 *   processes share). Direct, bare proxy, our gateway (chat completions) and Portkey.
 * - throughput: BENCH_CONNECTIONS connections at full speed (autocannon); req/s of the median round.
 * CPU per call is each target's own process tree (the process and its descendants, from /proc),
 * and the bench's own PostgreSQL (its postmaster's tree only), the fake upstream's tree.
 *
 * Knobs: BENCH_RATE (300), BENCH_SECONDS (3), BENCH_CONNECTIONS (32), ROUNDS (8), WARMUP_SECONDS
 * (5, full speed, per target) and WARMUP_CALLS (at least 5,000 calls), STREAM_GAP_MS (1), ENDPOINTS=0 (leave out /v1/messages, /v1/responses and chat
 * translated to Anthropic), PORTKEY=0, STREAM=0, LOAD=light|burst|stream|throughput (that load only,
 * e.g. for profiling), GATEWAY_NODE_ARGS (node flags for our gateway's process, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`), GATEWAY_PROFILE_DIR (a CPU profile of our gateway over
 * the measured rounds only, written there; `npm run bench:gateway-profile`), BARE_NODE_ARGS (the
 * same for the bare proxy), COMPARE_GATEWAY (a built gateway-server.js of another version, e.g.
 * from a git worktree: measured as one more target, for an A/B of a change in one run),
 * DATABASE_URL (else an embedded PostgreSQL).
 */
import autocannon from 'autocannon';
import pg from 'pg';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Client, request } from 'undici';
import { startDatabase } from '../live-fanout/setup.js';
import { startBuiltChild, startPortkey, startTsChild, type Child } from './processes.js';
import { postmasterPid, treeCpuMs } from './cpu.js';

const RATE = Number(process.env.BENCH_RATE ?? 300);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 8);
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 5);
/** ...and at least this many calls: on a busy machine 5 s is too few calls for the JIT. */
const WARMUP_CALLS = Number(process.env.WARMUP_CALLS ?? 5000);
const WITH_PORTKEY = process.env.PORTKEY !== '0';
const WITH_STREAM = process.env.STREAM !== '0';
const ONLY_LOAD = process.env.LOAD;
const WITH_ENDPOINTS = process.env.ENDPOINTS !== '0';
const CHUNKS = 20;
/** Streams: the fake waits this long before each chunk ([slow:N]), so chunks travel one by one as a model's do. */
const STREAM_GAP_MS = Number(process.env.STREAM_GAP_MS ?? 1);
/** CLOCK_MONOTONIC in ms: the fake upstream reads the same clock (process.hrtime), so times compare across processes. */
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

interface Target {
  name: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  /** The request body with `tag` (`[bench:<id>]`, or '' for warm-up) in the prompt. */
  body(tag: string, stream: boolean): string;
  pid: number;
  /** Also run with stream: true. */
  streams: boolean;
}

/** One call (ms): the client's latency and time to the first content, and what was added to each. */
interface Sample {
  latency: number;
  /** Client's time to the first content chunk (streams) or the first body byte. */
  first: number;
  added: number;
  addedFirst: number;
  /** Streams: each content chunk's trip, from the fake's write to the client's read (ms). */
  chunkTrips: number[];
}

interface Run {
  samples: Sample[];
  calls: number;
  errors: number;
  /** Calls the fake has no time for (never reached it, or not under that id). */
  unmatched: number;
  /** Answers that carried the fake's x-upstream-service-us header through. */
  headerPassed: number;
  rps: number;
  /** CPU ms per call: the target's process tree, the bench's PostgreSQL tree, the fake upstream's tree. */
  cpu: { own: number; postgres: number; upstream: number };
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let upstreamPid = 0;
let upstreamUrl = '';
let pgPid = 0;
let nextId = 1;

function cpuNow(t: Target) {
  return [treeCpuMs(t.pid), treeCpuMs(pgPid), treeCpuMs(upstreamPid)] as const;
}

/** The fake's log since the last read: id -> [first byte us, last byte us]. */
type FakeTiming = [firstUs: number, endUs: number, arrivalMs: number, writesUs?: number[]];
async function fakeTimings(): Promise<Record<string, FakeTiming>> {
  const res = await request(`${upstreamUrl}/__bench/timings`);
  return (await res.body.json()) as Record<string, FakeTiming>;
}

/** Our own client: `connections` connections share each second's `rate` calls, sent back to back. */
async function drive(t: Target, opts: { seconds: number; connections: number; rate: number; stream: boolean }): Promise<Run> {
  await fakeTimings(); // clear
  const clients = Array.from({ length: opts.connections }, () => new Client(t.url, { pipelining: 1, keepAliveTimeout: 30_000 }));
  const raw: { id: number; start: number; first: number; end: number; chunks: number[] }[] = [];
  let errors = 0;
  let headerPassed = 0;
  const before = cpuNow(t);
  const startedAt = nowMs();
  for (let second = 0; second < opts.seconds; second++) {
    let quota = opts.rate;
    const secondEnds = startedAt + (second + 1) * 1000;
    await Promise.all(
      clients.map(async (client) => {
        while (quota > 0 && nowMs() < secondEnds) {
          quota--;
          const id = nextId++;
          const body = t.body(`[bench:${id}]`, opts.stream);
          const start = nowMs();
          try {
            const res = await client.request({ path: t.path, method: 'POST', headers: { 'content-type': 'application/json', ...t.headers }, body });
            if (res.headers['x-upstream-service-us'] !== undefined) headerPassed++;
            let first = -1;
            // Streams: the time each content chunk ("w<k> ") was read; text kept from where the next is looked for.
            const chunks: number[] = [];
            let text = '';
            for await (const chunk of res.body) {
              const at = nowMs();
              if (!opts.stream) {
                if (first < 0) first = at;
                continue;
              }
              text += (chunk as Buffer).toString('latin1');
              for (let i = text.indexOf(`"w${chunks.length} `); i >= 0; i = text.indexOf(`"w${chunks.length} `)) {
                chunks.push(at);
                text = text.slice(i + 3);
              }
              if (first < 0 && chunks.length > 0) first = at;
              if (text.length > 64) text = text.slice(-64);
            }
            const end = nowMs();
            if (res.statusCode === 200) raw.push({ id, start, first, end, chunks });
            else errors++;
          } catch {
            errors++;
          }
        }
      }),
    );
    const wait = secondEnds - nowMs();
    if (wait > 0) await sleep(wait);
  }
  const after = cpuNow(t);
  await Promise.all(clients.map((c) => c.close()));
  const fake = await fakeTimings();
  const samples: Sample[] = [];
  let unmatched = 0;
  for (const c of raw) {
    const f = fake[String(c.id)];
    if (!f) {
      unmatched++;
      continue;
    }
    const latency = c.end - c.start;
    const first = c.first - c.start;
    // The fake's chunk k is its write k (the first write carries the headers and chunk 0).
    const writes = f[3] ?? [];
    const chunkTrips = c.chunks.flatMap((at, k) => (writes[k] === undefined ? [] : [at - (f[2] + writes[k] / 1000)]));
    samples.push({ latency, first, added: latency - f[1] / 1000, addedFirst: first - f[0] / 1000, chunkTrips });
  }
  const n = Math.max(1, raw.length);
  return {
    samples,
    calls: raw.length,
    errors,
    unmatched,
    headerPassed,
    rps: raw.length / opts.seconds,
    cpu: { own: (after[0] - before[0]) / n, postgres: (after[1] - before[1]) / n, upstream: (after[2] - before[2]) / n },
  };
}

/** Full speed through autocannon (throughput and warm-up): req/s only. `amount`: stop after that many calls instead. */
async function hammer(t: Target, seconds: number, connections: number, amount?: number): Promise<Run> {
  const result = await autocannon({
    ...(amount ? { amount } : { duration: seconds }),
    url: `${t.url}${t.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body('', false),
    connections,
  });
  return { samples: [], calls: result.requests.total, errors: result.errors + result.non2xx, unmatched: 0, headerPassed: 0, rps: result.requests.average, cpu: { own: 0, postgres: 0, upstream: 0 } };
}

const loadAtStart = loadavg().map((x) => round(x, 2));
const db = await startDatabase();
const children: Child[] = [];
try {
  // The bench's own PostgreSQL: its postmaster (and so its backends) only.
  const pgClient = new pg.Client({ connectionString: db.url });
  await pgClient.connect();
  try {
    pgPid = postmasterPid(String((await pgClient.query('show data_directory')).rows[0].data_directory));
  } catch {
    pgPid = 0;
  }
  await pgClient.end();
  if (!pgPid) console.warn('PostgreSQL: its postmaster was not found (not local, or not a superuser): its CPU is not reported');

  const upstream = await startTsChild('upstream-server.ts', {}, 'the fake upstream');
  children.push(upstream);
  upstreamPid = upstream.pid;
  upstreamUrl = upstream.url;
  const gateway = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url }, 'our gateway');
  children.push(gateway);
  const [apiKey] = gateway.fields;
  const bare = await startTsChild('bare-proxy-server.ts', { UPSTREAM_URL: upstream.url }, 'the bare proxy');
  children.push(bare);

  const prompt = (tag: string) => [{ role: 'user', content: `Say hello to the benchmark [chunks:${CHUNKS}] ${tag}`.trim() }];
  const openai = (model: string) => (tag: string, stream: boolean) => JSON.stringify({ model, messages: prompt(stream ? `${tag} [slow:${STREAM_GAP_MS}]` : tag), ...(stream ? { stream: true } : {}) });
  const chat = '/v1/chat/completions';
  const targets: Target[] = [
    { name: 'direct (fake upstream)', url: upstream.url, path: chat, headers: { authorization: 'Bearer sk-direct' }, body: openai('gpt-4o-mini'), pid: upstream.pid, streams: true },
    { name: 'bare Node proxy (floor)', url: bare.url, path: chat, headers: { authorization: 'Bearer sk-direct' }, body: openai('gpt-4o-mini'), pid: bare.pid, streams: true },
    { name: 'our gateway (metered)', url: gateway.url, path: chat, headers: { authorization: `Bearer ${apiKey}` }, body: openai('openai/gpt-4o-mini'), pid: gateway.pid, streams: true },
  ];
  const compare = process.env.COMPARE_GATEWAY;
  if (compare) {
    // Another build of our gateway (same database schema), as a target of its own in the same run: an A/B of a change.
    const other = await startBuiltChild(compare, { DATABASE_URL: db.url, UPSTREAM_URL: upstream.url }, 'the compared gateway');
    children.push(other);
    // COMPARE_FIRST=1: driven before ours in each round (to see whether the order matters).
    targets.splice(process.env.COMPARE_FIRST === '1' ? 2 : targets.length, 0, { name: 'compared gateway (COMPARE_GATEWAY)', url: other.url, path: chat, headers: { authorization: `Bearer ${other.fields[0]}` }, body: openai('openai/gpt-4o-mini'), pid: other.pid, streams: true });
  }
  if (WITH_ENDPOINTS) {
    const anthropic = (tag: string) => JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_tokens: 256, messages: prompt(tag) });
    targets.push(
      { name: 'direct Anthropic messages', url: upstream.url, path: '/v1/messages', headers: { 'x-api-key': 'sk-direct', 'anthropic-version': '2023-06-01' }, body: (tag) => JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 256, messages: prompt(tag) }), pid: upstream.pid, streams: false },
      { name: 'gateway /v1/messages (native)', url: gateway.url, path: '/v1/messages', headers: { 'x-api-key': apiKey!, 'anthropic-version': '2023-06-01' }, body: anthropic, pid: gateway.pid, streams: false },
      {
        name: 'gateway /v1/responses (translated)',
        url: gateway.url,
        path: '/v1/responses',
        headers: { authorization: `Bearer ${apiKey}` },
        body: (tag) => JSON.stringify({ model: 'anthropic/claude-haiku-4-5', max_output_tokens: 256, input: prompt(tag)[0]!.content }),
        pid: gateway.pid,
        streams: false,
      },
      { name: 'gateway chat -> Anthropic (translated)', url: gateway.url, path: chat, headers: { authorization: `Bearer ${apiKey}` }, body: anthropic, pid: gateway.pid, streams: false },
    );
  }
  if (WITH_PORTKEY) {
    const portkey = await startPortkey(18787 + Math.floor(Math.random() * 1000));
    children.push(portkey);
    targets.push({
      name: 'Portkey gateway',
      url: portkey.url,
      path: chat,
      headers: { authorization: 'Bearer sk-portkey', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream.url}/v1` },
      body: openai('gpt-4o-mini'),
      pid: portkey.pid,
      streams: true,
    });
  }

  type LoadName = 'light' | 'burst' | 'stream' | 'throughput';
  const loadNames: LoadName[] = (['light', 'burst', 'stream', 'throughput'] as const).filter((l) => (!ONLY_LOAD || l === ONLY_LOAD) && (WITH_STREAM || l !== 'stream'));
  const runOne = (t: Target, l: LoadName): Promise<Run> | null => {
    if (l === 'light') return drive(t, { seconds: SECONDS, connections: 1, rate: RATE, stream: false });
    if (l === 'burst') return drive(t, { seconds: SECONDS, connections: 8, rate: RATE, stream: false });
    if (l === 'stream') return t.streams ? drive(t, { seconds: SECONDS, connections: 1, rate: RATE, stream: true }) : null;
    return hammer(t, SECONDS, CONNECTIONS);
  };
  const runs = new Map<string, Run[]>();
  for (const t of targets) {
    process.stdout.write(`warming up ${t.name}...\n`);
    // Full speed for WARMUP_SECONDS and at least WARMUP_CALLS calls, so every target's JIT has
    // compiled its hot path before anything is measured (a light load alone takes tens of seconds).
    const warm = await hammer(t, WARMUP_SECONDS, 8);
    if (warm.calls < WARMUP_CALLS) await hammer(t, 0, 8, WARMUP_CALLS - warm.calls);
    if (t.streams && loadNames.includes('stream')) await drive(t, { seconds: 1, connections: 4, rate: 2000, stream: true });
  }
  // GATEWAY_PROFILE_DIR: our gateway profiles itself from here on (gateway-server.ts), not its start-up and warm-up.
  if (process.env.GATEWAY_PROFILE_DIR) process.kill(gateway.pid, 'SIGUSR2');
  for (let r = 1; r <= ROUNDS; r++) {
    for (const l of loadNames) {
      for (const t of targets) {
        const pending = runOne(t, l);
        if (!pending) continue;
        const run = await pending;
        const key = `${t.name}|${l}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
        const added = run.samples.map((s) => s.added).sort((a, b) => a - b);
        process.stdout.write(
          `round ${r} ${l.padEnd(10)} ${t.name.padEnd(38)} ` +
            (l === 'throughput' ? `${Math.round(run.rps)}/s` : `added p50 ${round(percentile(added, 0.5))} p99 ${round(percentile(added, 0.99))} ms, cpu ${round(run.cpu.own)}/${round(run.cpu.postgres)} ms, ${run.errors} errors, ${run.unmatched} unmatched`) +
            '\n',
        );
      }
    }
  }
  {
    // Printed for every run (LOAD=<one load> too: its figures and the targets it can check);
    // last-run.json is written only by a run of every load.
    const ran = (l: LoadName) => loadNames.includes(l);
    const of = (t: Target, l: LoadName) => runs.get(`${t.name}|${l}`) ?? [];
    const pooled = (t: Target, l: LoadName, pick: (s: Sample) => number) => of(t, l).flatMap((r) => r.samples.map(pick)).sort((a, b) => a - b);
    const pct = (xs: number[]) => ({ p50: round(percentile(xs, 0.5)), p99: round(percentile(xs, 0.99)) });
    const cpuPerCall = (t: Target, l: LoadName, pick: (r: Run) => number) => {
      const rs = of(t, l);
      const calls = rs.reduce((n, r) => n + r.calls, 0);
      return round(rs.reduce((n, r) => n + pick(r) * Math.max(1, r.calls), 0) / Math.max(1, calls));
    };
    const count = (t: Target, pick: (r: Run) => number) => [...runs.entries()].filter(([k]) => k.startsWith(`${t.name}|`)).reduce((n, [, rs]) => n + rs.reduce((m, x) => m + pick(x), 0), 0);
    const rows = targets.map((t) => ({
      target: t.name,
      light: { latency: pct(pooled(t, 'light', (s) => s.latency)), added: pct(pooled(t, 'light', (s) => s.added)), calls: of(t, 'light').reduce((n, r) => n + r.samples.length, 0) },
      burst: { latency: pct(pooled(t, 'burst', (s) => s.latency)), added: pct(pooled(t, 'burst', (s) => s.added)) },
      stream: t.streams
        ? {
            ttft: pct(pooled(t, 'stream', (s) => s.first)),
            addedTtft: pct(pooled(t, 'stream', (s) => s.addedFirst)),
            addedLast: pct(pooled(t, 'stream', (s) => s.added)),
            chunkTrip: pct(of(t, 'stream').flatMap((r) => r.samples.flatMap((s) => s.chunkTrips)).sort((a, b) => a - b)),
            chunksSeen: of(t, 'stream').reduce((n, r) => n + r.samples.reduce((m, s) => m + s.chunkTrips.length, 0), 0),
            calls: of(t, 'stream').reduce((n, r) => n + r.samples.length, 0),
            cpuOwn: cpuPerCall(t, 'stream', (r) => r.cpu.own),
            cpuPerChunk: round(cpuPerCall(t, 'stream', (r) => r.cpu.own) / CHUNKS),
          }
        : null,
      rps: Math.round(median(of(t, 'throughput').map((r) => r.rps))),
      cpuPerCall: { own: cpuPerCall(t, 'light', (r) => r.cpu.own), postgres: cpuPerCall(t, 'light', (r) => r.cpu.postgres), upstream: cpuPerCall(t, 'light', (r) => r.cpu.upstream) },
      errors: count(t, (r) => r.errors),
      unmatched: count(t, (r) => r.unmatched),
      passesUpstreamHeader: count(t, (r) => r.headerPassed) > 0,
    }));
    const loadAtEnd = loadavg().map((x) => round(x, 2));
    console.log(`\n${ROUNDS} rounds of ${SECONDS} s per load and target, interleaved. light = 1 connection, ${RATE} calls/s; burst = 8 connections, ${RATE}/s; stream = light with stream: true (${CHUNKS} chunks); throughput = ${CONNECTIONS} connections (autocannon). Load average at start ${loadAtStart.join(' ')}, at end ${loadAtEnd.join(' ')}.`);
    console.log('"added" = client latency - the fake upstream\'s own service time, per call (ms); percentiles over all rounds\' calls.\n');
    console.log('| target | light p50 | added p50 | added p99 | burst added p50 | burst added p99 | max req/s | CPU ms per call (own / PostgreSQL) | passes upstream header | errors / unmatched |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.target} | ${r.light.latency.p50} | ${r.light.added.p50} | ${r.light.added.p99} | ${r.burst.added.p50} | ${r.burst.added.p99} | ${r.rps} | ${r.cpuPerCall.own} / ${r.cpuPerCall.postgres} | ${r.passesUpstreamHeader ? 'yes' : 'no'} | ${r.errors} / ${r.unmatched} |`);
    }
    if (ran('stream')) {
      console.log(`\n| streamed (${CHUNKS} chunks, ${STREAM_GAP_MS} ms apart) | TTFT p50 | added TTFT p50 | added TTFT p99 | added to last chunk p50 / p99 | chunk trip (fake write to client read) p50 / p99 | CPU ms per call / per chunk | calls |`);
      console.log('|---|---|---|---|---|---|---|---|');
      for (const r of rows) if (r.stream) console.log(`| ${r.target} | ${r.stream.ttft.p50} | ${r.stream.addedTtft.p50} | ${r.stream.addedTtft.p99} | ${r.stream.addedLast.p50} / ${r.stream.addedLast.p99} | ${r.stream.chunkTrip.p50} / ${r.stream.chunkTrip.p99} | ${r.stream.cpuOwn} / ${r.stream.cpuPerChunk} | ${r.stream.calls} |`);
    }
    // The targets, as ratios of figures measured side by side in this run.
    const row = (name: string) => rows.find((r) => r.target === name);
    const ours = row('our gateway (metered)')!;
    const floor = row('bare Node proxy (floor)')!;
    const portkey = row('Portkey gateway');
    const targetsMet: Record<string, { value: number; limit: number; met: boolean }> = {};
    const check = (name: string, value: number, limit: number, atLeast = false) => (targetsMet[name] = { value: round(value, 3), limit: round(limit, 3), met: atLeast ? value >= limit : value <= limit });
    if (portkey && ran('light')) {
      check('added p50 / Portkey added p50 (<= 1/3)', ours.light.added.p50 / portkey.light.added.p50, 1 / 3);
      check('added p99 / Portkey added p99 (<= 1/3)', ours.light.added.p99 / portkey.light.added.p99, 1 / 3);
    }
    if (ran('light')) {
      check('added p50 / bare proxy added p50 (<= 2)', ours.light.added.p50 / floor.light.added.p50, 2);
      check('own CPU per call / bare proxy CPU per call (<= 2)', ours.cpuPerCall.own / floor.cpuPerCall.own, 2);
    }
    if (ran('throughput')) check(`req/s at ${CONNECTIONS} connections / bare proxy's (>= 0.5)`, ours.rps / floor.rps, 0.5, true);
    if (ran('stream') && ours.stream && floor.stream) check('added TTFT p50 - bare proxy added TTFT p50, ms (<= 0.5)', ours.stream.addedTtft.p50 - floor.stream.addedTtft.p50, 0.5);
    console.log('\n| target (#15) | value | limit | met |\n|---|---|---|---|');
    for (const [name, c] of Object.entries(targetsMet)) console.log(`| ${name} | ${c.value} | ${c.limit} | ${c.met ? 'met' : 'MISSED'} |`);
    if (!ONLY_LOAD) writeFileSync(
      new URL('./last-run.json', import.meta.url),
      JSON.stringify({ at: new Date().toISOString(), rate: RATE, seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, chunks: CHUNKS, streamGapMs: STREAM_GAP_MS, loadAverage: { start: loadAtStart, end: loadAtEnd }, rows, targets: targetsMet }, null, 2) + '\n',
    );
  }
} finally {
  for (const c of children.reverse()) await c.stop();
  await db.stop();
}
