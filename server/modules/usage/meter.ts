/**
 * Metering by group commit. Gateway calls hand their records to the meter after the response; the
 * meter commits them in batches, each batch ONE transaction holding the request logs, the hourly
 * rollups (with latency histograms), API keys' last use, and one ledger deduction per organization
 * through billing's deductUsage. A batch commits `windowMs` (200 ms by default) after its oldest
 * record's response, so records are committed within ~210 ms of their response under normal load,
 * and under load batches grow rather than commits running back to back. (A batch costs PostgreSQL
 * a fixed number of round trips whatever its size, six today: at 300 calls/s a 15 ms window made
 * batches of 8 calls and the database's CPU per call was mostly that fixed cost; see bench/README.md.)
 *
 * Exactly once: every batch has an id, claimed (usage_batch) in the transaction that writes it. A
 * commit whose reply is lost (the connection drops after PostgreSQL committed) is retried; the retry
 * finds its claim and is a no-op that counts as success. A batch split in halves (a record the
 * database refuses) gives its halves ids derived from its own (`id.0`, `id.1`) and a half first
 * looks for its ancestors' claims (under the family's lock, so an ancestor still committing is waited
 * for), so a half never re-applies what its whole already committed.
 * Claims are kept a day (retries last seconds to minutes), then pruned by the meter.
 *
 * Never dropped, never blocking: text the database cannot hold (lone UTF-16 surrogates, NUL) is
 * replaced with U+FFFD before writing, in bodies, model names, error text and rollup keys. A batch
 * the database still refuses is split at once (connection errors and deadlocks are retried whole,
 * with backoff); a single refused record is written again without its bodies. Only a record refused
 * even without bodies is given up (logged in full, counted in stats.dropped).
 *
 * Live usage summaries: when a `usage` event is due (live.ts), a whole batch emits it in its own
 * transaction (what was committed and not yet published, plus its own records), so it commits with
 * the batch or not at all; the family's outcome (commitFamily) says which, even after a lost reply
 * or a split, so a summary never counts a call twice.
 *
 * Round trips per batch: BEGIN, the claim with the organizations' locks, the rows, one ledger
 * posting per charged organization, the events (one statement: the unit of work's publishInOne when
 * at most one event is stored), COMMIT.
 *
 * Lock order: a batch first key-share-locks its organizations' rows (in id order), then writes
 * logs, rollups and keys' last use, then deducts. Deleting a project or an organization locks the
 * organization row first too, so they queue behind the batch (or it behind them) and never deadlock.
 *
 * What a crash can lose: records live in process memory between the response and their commit.
 * SIGTERM (BuiltApp.close) stops accepting requests, waits for calls in flight, and drains every
 * pending record before exiting (giving up after 10 s of an unreachable database). kill -9 (or a
 * power cut) loses the records not yet committed: at most the last ~210 ms of answered calls per
 * instance (plus any batch being retried while the database is unreachable); those calls were
 * served but are neither logged nor charged. A committed batch is never partially applied: logs,
 * rollups and the deduction commit together, and never twice.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { nanosToDecimal } from '../../../shared/money.js';
import { runSqlCommand, type Sql } from '../../events/unit-of-work.js';
import { handlePoolErrors, isDatabaseUnavailable, isTransactionConflict } from '../../db/pg-errors.js';
import { deductUsage } from '../billing/ledger.js';
import type { Services } from '../../services.js';
import { LATENCY_COLUMNS, latencyBucket } from './histogram.js';
import { observeGatewayCall, observeMeterBatch } from '../../observability/metrics.js';
import { commitBatchSpend, type RefusedLimit } from '../limits/commit.js';
import type { SpendCharge } from '../limits/engine.js';
import type { BatchUsage, UsageEvents } from './live.js';

export type PaidBy = 'credits' | 'provider_key' | 'cache' | 'none';

export interface UsageRecord {
  orgId: string;
  projectId: string;
  apiKeyId: string;
  /** Which API the call came through: 'chat.completions', 'messages', 'responses', 'embeddings'. */
  endpoint: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache (part of inputTokens). */
  cacheWriteTokens: number;
  /** Integer nano-dollars: what the call cost (charged only when paidBy is 'credits'). */
  costNanos: bigint;
  paidBy: PaidBy;
  latencyMs: number;
  ttftMs: number | null;
  status: number;
  error: string | null;
  cached: boolean;
  streamed: boolean;
  canceled: boolean;
  /** Only when the organization's retention level is 'retain'. */
  requestBody: unknown;
  responseBody: unknown;
  createdAt: Date;
  /**
   * The call's upstream attempts in order (issue #11; the last one answered or failed last). Stored
   * only when there were several: a call with at most one attempt keeps null in request_log.attempts.
   */
  attempts?: readonly UsageAttempt[];
  /** What the call's cost settled on spend limits (server/modules/limits): committed as spent with the batch. */
  spend?: readonly SpendCharge[];
  /** The spend limit that refused this call (402), for the limit alerts. */
  refusedBy?: RefusedLimit;
}

/** One upstream attempt of a call (gateway/call.ts AttemptRecord has this shape). */
export interface UsageAttempt {
  provider: string;
  model: string;
  keyName: string;
  providerKeyId: string | null;
  /** Upstream status, 0 for a connection error or a timeout before headers. */
  status: number;
  latencyMs: number;
  error: string | null;
}

export const chargedNanos = (r: UsageRecord) => (r.paidBy === 'credits' ? r.costNanos : 0n);

const LOG_COLUMNS: [string, string][] = [
  ['org_id', 'uuid'], ['project_id', 'uuid'], ['api_key_id', 'uuid'], ['endpoint', 'varchar'], ['provider', 'varchar'], ['model', 'varchar'],
  ['input_tokens', 'int'], ['output_tokens', 'int'], ['cached_tokens', 'int'], ['cache_write_tokens', 'int'], ['cost_nanos', 'bigint'], ['paid_by', 'text'],
  ['latency_ms', 'int'], ['ttft_ms', 'int'], ['status', 'smallint'], ['error', 'varchar'], ['cached', 'boolean'], ['streamed', 'boolean'],
  ['canceled', 'boolean'], ['request_body', 'jsonb'], ['response_body', 'jsonb'], ['created_at', 'timestamptz'], ['attempts', 'jsonb'],
];
const INSERT_LOGS = `insert into request_log (${LOG_COLUMNS.map(([c]) => c).join(', ')})
  select ${LOG_COLUMNS.map(([c]) => c).join(', ')} from jsonb_to_recordset(?::jsonb) as r(${LOG_COLUMNS.map(([c, t]) => `${c} ${t}`).join(', ')})`;

const ROLLUP_KEY = ['org_id', 'hour', 'project_id', 'api_key_id', 'provider', 'model', 'endpoint'];
const ROLLUP_KEY_TYPES = ['uuid', 'timestamptz', 'uuid', 'uuid', 'varchar', 'varchar', 'varchar'];
const ROLLUP_SUMS: [string, string][] = [
  ['requests', 'int'], ['errors', 'int'], ['cache_hits', 'int'], ['canceled', 'int'], ['streamed', 'int'],
  ['input_tokens', 'bigint'], ['output_tokens', 'bigint'], ['cached_tokens', 'bigint'], ['cost_nanos', 'bigint'], ['charged_nanos', 'bigint'],
  ['latency_sum_ms', 'bigint'], ['ttft_sum_ms', 'bigint'], ['ttft_count', 'int'], ['retried', 'int'], ['fell_back', 'int'],
  ...LATENCY_COLUMNS.map((c): [string, string] => [c, 'int']),
];
const ROLLUP_COLUMNS = [...ROLLUP_KEY, ...ROLLUP_SUMS.map(([c]) => c)];
// Rows go in key order, so two instances upserting the same rollups lock them in the same order.
const UPSERT_ROLLUPS = `insert into usage_rollup (${ROLLUP_COLUMNS.join(', ')})
  select ${ROLLUP_COLUMNS.join(', ')} from jsonb_to_recordset(?::jsonb)
    as r(${[...ROLLUP_KEY.map((c, i) => `${c} ${ROLLUP_KEY_TYPES[i]}`), ...ROLLUP_SUMS.map(([c, t]) => `${c} ${t}`)].join(', ')})
  order by ${ROLLUP_KEY.join(', ')}
  on conflict (${ROLLUP_KEY.join(', ')}) do update set ${ROLLUP_SUMS.map(([c]) => `${c} = usage_rollup.${c} + excluded.${c}`).join(', ')}`;

const PROJECT_KEY = ['org_id', 'hour', 'project_id'];
const UPSERT_PROJECT_ROLLUPS = `insert into usage_rollup_project (${[...PROJECT_KEY, ...ROLLUP_SUMS.map(([c]) => c)].join(', ')})
  select ${[...PROJECT_KEY, ...ROLLUP_SUMS.map(([c]) => c)].join(', ')} from jsonb_to_recordset(?::jsonb)
    as r(${[...PROJECT_KEY.map((c, i) => `${c} ${ROLLUP_KEY_TYPES[i]}`), ...ROLLUP_SUMS.map(([c, t]) => `${c} ${t}`)].join(', ')})
  order by ${PROJECT_KEY.join(', ')}
  on conflict (${PROJECT_KEY.join(', ')}) do update set ${ROLLUP_SUMS.map(([c]) => `${c} = usage_rollup_project.${c} + excluded.${c}`).join(', ')}`;

const LAST_USED = `update api_key k set last_used_at = greatest(k.last_used_at, t.at)
  from (select key::uuid as id, value::timestamptz as at from jsonb_each_text(?::jsonb) order by 1) t where k.id = t.id`;

// A batch's logs, rollups, per-project rollups and keys' last use in ONE statement (one round trip;
// PostgreSQL runs the data-modifying parts in the order written, so two instances take row locks
// in the same order). Parameters travel as bound values, not spliced into the SQL text.
const WRITE_BATCH = `with logs as (${INSERT_LOGS}),
  rollups as (${UPSERT_ROLLUPS}),
  project_rollups as (${UPSERT_PROJECT_ROLLUPS}),
  touched as (${LAST_USED})
  select 1`;

/** Sum columns kept as bigint (money in nano-dollars can pass 2^53); every other sum is a safe integer Number. */
const MONEY_SUMS = new Set(['cost_nanos', 'charged_nanos']);
const SUM_COLUMNS = ROLLUP_SUMS.map(([c]) => c);

/**
 * The detailed rollups summed per organization, hour and project. Plain loops (no entries arrays
 * or object spreads per row): the meter runs this on the event loop for every batch.
 */
export function projectRollupRows(rows: RollupRow[]): RollupRow[] {
  const out = new Map<string, RollupRow>();
  for (const row of rows) {
    const id = `${row.org_id}|${row.hour}|${row.project_id}`;
    const acc = out.get(id);
    if (!acc) {
      const first: RollupRow = { org_id: row.org_id!, hour: row.hour!, project_id: row.project_id! };
      for (const c of SUM_COLUMNS) first[c] = row[c]!;
      out.set(id, first);
      continue;
    }
    for (const c of SUM_COLUMNS) acc[c] = MONEY_SUMS.has(c) ? (BigInt(acc[c]!) + BigInt(row[c]!)).toString() : Number(acc[c]) + Number(row[c]);
  }
  return [...out.values()];
}

/** What PostgreSQL text and jsonb refuse: NUL, and UTF-16 surrogates that are not half of a pair. */
const UNSTORABLE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\u0000/g;
/** The text with what PostgreSQL refuses replaced by U+FFFD (same length: slicing first is safe). */
export const storableText = (text: string) => text.replace(UNSTORABLE, '\ufffd');
/**
 * The same in JSON text: JSON.stringify writes paired surrogates as they are and escapes NUL and
 * lone surrogates as `\u0000` / `\ud800`; those escapes become `\ufffd` (not a `\\u0000` written
 * by an escaped backslash, which is literal text: hence the even run of backslashes before it).
 */
const UNSTORABLE_ESCAPES = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi;
// Most batches have no escape at all: a plain search first spares the regex a pass over the batch.
export const storableJson = (json: string) => (json.includes('\\u') ? json.replace(UNSTORABLE_ESCAPES, '$1\\ufffd') : json);

const int32 = (n: number) => (Number.isFinite(n) ? Math.max(-2_147_483_648, Math.min(2_147_483_647, Math.round(n))) : 0);

/** Attempts kept per call at most (routing makes a handful; the rest would be noise). */
export const MAX_STORED_ATTEMPTS = 20;

/**
 * The attempts as the request log keeps them: only when there were several (a call with one attempt
 * is its own row), text repaired and cut like the row's, numbers whole and in range.
 */
function storableAttempts(attempts: readonly UsageAttempt[] | undefined): UsageAttempt[] | undefined {
  if (!attempts || attempts.length < 2) return undefined;
  // Too many: the first ones and the last (the attempt that answered) are kept.
  const kept = attempts.length <= MAX_STORED_ATTEMPTS ? attempts : [...attempts.slice(0, MAX_STORED_ATTEMPTS - 1), attempts[attempts.length - 1]!];
  return kept.map((a) => ({
    provider: storableText(String(a.provider).slice(0, 40)),
    model: storableText(String(a.model).slice(0, 200)),
    keyName: storableText(String(a.keyName).slice(0, 40)),
    providerKeyId: a.providerKeyId === null ? null : storableText(String(a.providerKeyId).slice(0, 40)),
    status: Number.isInteger(a.status) && a.status >= 0 && a.status <= 999 ? a.status : 0,
    latencyMs: Math.max(0, int32(a.latencyMs)),
    error: a.error === null || a.error === undefined ? null : storableText(String(a.error).slice(0, 500)),
  }));
}

/** Needed more than one upstream attempt. */
export const wasRetried = (r: UsageRecord) => (r.attempts?.length ?? 0) > 1;
/** Answered (or failed last) at another provider or model than its first attempt's. */
export function fellBack(r: UsageRecord): boolean {
  const a = r.attempts;
  if (!a || a.length < 2) return false;
  const first = a[0]!;
  const last = a[a.length - 1]!;
  return first.provider !== last.provider || first.model !== last.model;
}

/**
 * A record the database can take, whatever the call produced: text repaired and cut to its column,
 * counts whole and in range. Done once when recorded, so logs and rollup keys agree.
 */
export function storableRecord(r: UsageRecord): UsageRecord {
  return {
    ...r,
    provider: storableText(r.provider.slice(0, 40)),
    model: storableText(r.model.slice(0, 200)),
    error: r.error === null ? null : storableText(r.error.slice(0, 1000)),
    inputTokens: Math.max(0, int32(r.inputTokens)),
    outputTokens: Math.max(0, int32(r.outputTokens)),
    cachedTokens: Math.max(0, int32(r.cachedTokens)),
    cacheWriteTokens: Math.max(0, int32(r.cacheWriteTokens)),
    costNanos: r.costNanos < 0n ? 0n : r.costNanos,
    latencyMs: Math.max(0, int32(r.latencyMs)),
    ttftMs: r.ttftMs === null ? null : Math.max(0, int32(r.ttftMs)),
    status: Number.isInteger(r.status) && r.status >= 100 && r.status <= 999 ? r.status : 500,
    createdAt: Number.isFinite(r.createdAt.getTime()) ? r.createdAt : new Date(),
    attempts: storableAttempts(r.attempts),
  };
}

function logRow(r: UsageRecord) {
  const row = {
    org_id: r.orgId,
    project_id: r.projectId,
    api_key_id: r.apiKeyId,
    endpoint: r.endpoint.slice(0, 40),
    provider: r.provider.slice(0, 40),
    model: r.model.slice(0, 200),
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    cached_tokens: r.cachedTokens,
    cache_write_tokens: r.cacheWriteTokens,
    cost_nanos: r.costNanos.toString(),
    paid_by: r.paidBy,
    latency_ms: Math.round(r.latencyMs),
    ttft_ms: r.ttftMs === null ? null : Math.round(r.ttftMs),
    status: r.status,
    error: r.error?.slice(0, 1000) ?? null,
    cached: r.cached,
    streamed: r.streamed,
    canceled: r.canceled,
    request_body: r.requestBody ?? null,
    response_body: r.responseBody ?? null,
    created_at: r.createdAt.toISOString(),
  };
  // Absent from the JSON (null in the column) unless the call had several attempts: the common path sends nothing extra.
  return r.attempts && r.attempts.length > 1 ? { ...row, attempts: r.attempts } : row;
}

type RollupRow = Record<string, string | number>;

/** One detailed rollup being summed: its key, its counts (safe integers) and its money (bigint). */
interface RollupAcc {
  row: RollupRow;
  latency: number[];
  cost: bigint;
  charged: bigint;
}

/**
 * The batch's records summed per rollup key (organization, hour, project, API key, provider, model,
 * endpoint). Written for the event loop it runs on: one string key per record, the hour's ISO text
 * computed once per hour, counts as numbers (token sums of a batch stay far below 2^53), money as
 * bigint.
 */
export function rollupRows(records: UsageRecord[]): RollupRow[] {
  const groups = new Map<string, RollupAcc>();
  const hours = new Map<number, string>();
  for (const r of records) {
    const hourMs = Math.floor(r.createdAt.getTime() / 3_600_000) * 3_600_000;
    let hour = hours.get(hourMs);
    if (hour === undefined) {
      hour = new Date(hourMs).toISOString();
      hours.set(hourMs, hour);
    }
    const provider = r.provider.slice(0, 40);
    const model = r.model.slice(0, 200);
    const endpoint = r.endpoint.slice(0, 40);
    const id = `${r.orgId}\u0001${hourMs}\u0001${r.projectId}\u0001${r.apiKeyId}\u0001${provider}\u0001${model}\u0001${endpoint}`;
    let g = groups.get(id);
    if (!g) {
      g = {
        row: {
          org_id: r.orgId, hour, project_id: r.projectId, api_key_id: r.apiKeyId, provider, model, endpoint,
          requests: 0, errors: 0, cache_hits: 0, canceled: 0, streamed: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0,
          latency_sum_ms: 0, ttft_sum_ms: 0, ttft_count: 0, retried: 0, fell_back: 0,
        },
        latency: new Array<number>(LATENCY_COLUMNS.length).fill(0),
        cost: 0n,
        charged: 0n,
      };
      groups.set(id, g);
    }
    const x = g.row as Record<string, number>;
    x.requests!++;
    if (r.status >= 400) x.errors!++;
    if (r.cached) x.cache_hits!++;
    if (r.canceled) x.canceled!++;
    if (r.streamed) x.streamed!++;
    if (wasRetried(r)) {
      x.retried!++;
      if (fellBack(r)) x.fell_back!++;
    }
    x.input_tokens! += r.inputTokens;
    x.output_tokens! += r.outputTokens;
    x.cached_tokens! += r.cachedTokens;
    g.cost += r.costNanos;
    g.charged += chargedNanos(r);
    const latency = Math.round(r.latencyMs);
    x.latency_sum_ms! += latency;
    if (r.ttftMs !== null) {
      x.ttft_sum_ms! += Math.round(r.ttftMs);
      x.ttft_count!++;
    }
    g.latency[latencyBucket(latency)]!++;
  }
  const rows: RollupRow[] = [];
  for (const g of groups.values()) {
    const row = g.row;
    row.cost_nanos = g.cost.toString();
    row.charged_nanos = g.charged.toString();
    for (let i = 0; i < LATENCY_COLUMNS.length; i++) row[LATENCY_COLUMNS[i]!] = g.latency[i]!;
    rows.push(row);
  }
  return rows;
}

export interface MeterOptions {
  windowMs: number;
  /** The meter commits on its own small connection pool, through runSqlCommand. */
  databaseUrl: string;
  maxBatch?: number;
  onCommitted?: (records: UsageRecord[]) => void;
  /** The coalesced `usage` live events: published in a batch's transaction when one is due (live.ts). */
  usageEvents?: Pick<UsageEvents, 'inBatch' | 'settle'>;
  /** The balance a committed batch left an organization with (this instance's gateway refuses on it at once). */
  onBalance?: (orgId: string, creditsNanos: bigint) => void;
  /** Records given up after the database refused them: never committed (their spend-limit charges are forfeited). */
  onGivenUp?: (records: UsageRecord[]) => void;
}

/**
 * Fault injection for tests: called at the start of a batch's transaction ('begin'), after its rows
 * were written and before its deductions ('written'), just before its COMMIT ('beforeCommit'), and
 * after the commit returned ('afterCommit': throwing there is a commit that succeeded but whose
 * reply was lost). Never set in production.
 */
export type MeterFault = (point: 'begin' | 'written' | 'beforeCommit' | 'afterCommit', batchId: string, records: UsageRecord[]) => void | Promise<void>;

const LAST_USED_EVERY_MS = 60_000;
/** Claims older than this are pruned (no retry lasts anywhere near as long). */
const CLAIM_KEEP = '1 day';
const PRUNE_EVERY_MS = 10 * 60_000;
/** A record refused this many times, even without its bodies, is given up. */
const MAX_REFUSALS = 3;

// A whole batch's claim, taking its family's lock in the same statement, then (only once the claim
// is in) its organizations, key-share-locked in id order before anything else (see the header): one
// round trip. The claim's data dependency on the lock, and the organizations' on the claim, order
// the three. An organization deleted since its calls is missing from `orgs` and its records skipped.
const LOCK_ORGS_AFTER_CLAIM = `orgs as (select o.id::text as id from organization o
    where o.id = any(?::uuid[]) and exists (select 1 from claim) order by o.id for key share of o)
  select exists (select 1 from claim) as claimed, coalesce((select array_agg(id) from orgs), '{}') as orgs`;
const CLAIM_WHOLE_BATCH = `with family as (select pg_advisory_xact_lock(hashtextextended(?, 0))),
  claim as (insert into usage_batch (id, created_at) select ?, now() from family
    on conflict (id) do nothing returning id),
  ${LOCK_ORGS_AFTER_CLAIM}`;
const LOCK_BATCH_FAMILY = `select pg_advisory_xact_lock(hashtextextended(?, 0))`;
// A split half's claim: none of its ancestors committed, and its own id is new; then its organizations, as above.
const CLAIM_SPLIT_BATCH = `with claim as (insert into usage_batch (id, created_at)
    select ?, now() where not exists (select 1 from usage_batch where id = any(?::varchar[]))
    on conflict (id) do nothing returning id),
  ${LOCK_ORGS_AFTER_CLAIM}`;

/**
 * Claims a batch id inside the batch's transaction and key-share-locks `orgIds` (sorted) if the
 * claim is in: null when the batch (or the whole it was split from) was already applied, else the
 * organizations still present. Every transaction of one batch family (the whole batch, its halves,
 * theirs) holds the family's lock until it ends. A half takes the lock before looking for its
 * ancestors' claims, in a statement of its own, so an ancestor whose commit is still in flight (its
 * client saw the connection drop, the server had not finished) is waited for and then seen, never missed.
 */
export async function claimBatch(sql: Sql, batchId: string, orgIds: readonly string[]): Promise<Set<string> | null> {
  const ancestors = ancestorsOf(batchId);
  const family = `usage-batch:${ancestors[0] ?? batchId}`;
  let rows: { claimed: boolean; orgs: string[] }[];
  if (ancestors.length === 0) rows = await sql.execute(CLAIM_WHOLE_BATCH, [family, batchId, orgIds]);
  else {
    await sql.execute(LOCK_BATCH_FAMILY, [family]);
    rows = await sql.execute(CLAIM_SPLIT_BATCH, [batchId, ancestors, orgIds]);
  }
  const row = rows[0]!;
  return row.claimed ? new Set(row.orgs) : null;
}

/** `a.0.1` -> [`a`, `a.0`]: the batches a split half was part of. */
function ancestorsOf(batchId: string): string[] {
  const parts = batchId.split('.');
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
}

type Failure = 'unreachable' | 'transient' | 'refused';

/** One batch and everything it became (retries, split halves): what the usage events need to know at the end. */
interface Family {
  usage: BatchUsage;
  /** Records committed (or found committed) by the family's attempts. */
  committed: UsageRecord[];
  /** An attempt of the whole batch returned: it committed, or found the whole committed earlier. */
  wholeReturned: boolean;
  /** Given up while closing with the database unreachable. */
  abandoned: boolean;
}

/**
 * Why a batch failed: the database is unreachable (retry the whole batch until it is back), a
 * conflict worth retrying as is (deadlock, serialization, lock or statement timeout, out of
 * resources), or the batch itself was refused (split it to find the record at fault).
 */
function failureOf(err: unknown): Failure {
  if (isDatabaseUnavailable(err) || isConnectionError(err)) return 'unreachable';
  if (isTransactionConflict(err) || /^(53|55P03|57014)/.test(String((err as { code?: unknown })?.code ?? ''))) return 'transient';
  return 'refused';
}

const hasBody = (r: UsageRecord) => r.requestBody != null || r.responseBody != null;

export class UsageMeter {
  private pending: UsageRecord[] = [];
  private oldestPendingAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closing = false;
  /** flush() callers waiting: batches go at once, as when closing, but the meter stays open. */
  private flushing = 0;
  private lastPrunedAt = -Infinity;
  private pruning: Promise<void> | null = null;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly maxBatch: number;
  private readonly pool: pg.Pool;
  /** Tests only: see MeterFault. */
  fault: MeterFault | null = null;
  /**
   * Batches committed (split halves count apart), records committed, failed attempts, retries that
   * found their batch already applied, records written without their bodies, records given up.
   */
  readonly stats = { batches: 0, records: 0, failures: 0, duplicates: 0, stripped: 0, dropped: 0 };

  constructor(
    private readonly services: Services,
    private readonly opts: MeterOptions,
  ) {
    this.maxBatch = opts.maxBatch ?? 2000;
    // One batch commits at a time; a second connection covers a broken one being replaced.
    this.pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 2, idleTimeoutMillis: 60_000, application_name: 'usage-meter' });
    // Idle or checked out mid-batch, a broken connection is logged, never an uncaught 'error' event.
    handlePoolErrors(this.pool, this.services.log, 'usage meter');
  }

  record(r: UsageRecord): void {
    if (this.pending.length === 0) this.oldestPendingAt = performance.now();
    const stored = storableRecord(r);
    this.pending.push(stored);
    observeGatewayCall(stored);
    if (!this.running) this.schedule();
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Records wait for a batch, or a batch is committing: a usage summary due now can ride in the next one. */
  get batchComing(): boolean {
    return !this.closing && (this.pending.length > 0 || this.running !== null);
  }

  /** Its connections in use, idle, and callers waiting for one (for /metrics). */
  poolState(): { used: number; idle: number; waiting: number } {
    return { used: this.pool.totalCount - this.pool.idleCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  /**
   * The next batch commits `windowMs` after its oldest record was answered (at once when closing or
   * flushing, or when a full batch waits). Records that arrive during a commit wait out their own
   * window too, so under load batches grow rather than commits following one another back to back.
   */
  private schedule(): void {
    if (this.running || this.pending.length === 0) return;
    const now = this.closing || this.flushing > 0 || this.opts.windowMs === 0 || this.pending.length >= this.maxBatch;
    const wait = now ? 0 : this.oldestPendingAt + this.opts.windowMs - performance.now();
    if (wait <= 0) return this.kick();
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.kick();
    }, wait);
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running || this.pending.length === 0) return;
    // Leftovers of an oversized backlog keep the old timestamp: they are due at once.
    const batch = this.pending.splice(0, this.maxBatch);
    const oldest = this.oldestPendingAt;
    this.running = this.commitFamily(batch, randomUUID()).then(() => observeMeterBatch(batch.length, (performance.now() - oldest) / 1000)).finally(() => {
      this.running = null;
      this.prune();
      this.schedule();
    });
  }

  /**
   * Commits a new batch (commitWithRetry), then tells the usage events what became of it. A whole
   * attempt that returned means the one attempt that committed the whole batch was one that emitted
   * what the family decided (inBatch); otherwise (it was split) the whole batch's claim says whether
   * an earlier attempt of it committed.
   */
  private async commitFamily(batch: UsageRecord[], batchId: string): Promise<void> {
    const family: Family = { usage: { decided: false, taken: null }, committed: [], wholeReturned: false, abandoned: false };
    await this.commitWithRetry(batch, batchId, family);
    const events = this.opts.usageEvents;
    if (!events) return;
    let published = family.wholeReturned;
    if (family.usage.taken && !published) {
      // Closing with the database unreachable: at most once (the totals may have been published).
      published = family.abandoned || (await this.claimed(batchId));
    }
    try {
      events.settle(family.usage, published, family.committed);
    } catch (err) {
      this.services.log.error({ err }, 'usage events failed');
    }
  }

  /** Whether `batchId`'s claim committed (true as well when the database cannot say: never publish twice). */
  private async claimed(batchId: string): Promise<boolean> {
    try {
      return (await this.pool.query('select 1 from usage_batch where id = $1', [batchId])).rowCount! > 0;
    } catch (err) {
      this.services.log.warn({ err, batchId }, 'usage meter: could not read a batch claim; its usage summary is not published again');
      return true;
    }
  }

  /**
   * Commits `batch` under `batchId`, however long the database takes to come back. A refused batch
   * is split at once (halves `id.0` and `id.1`, no wait: the others' records must not queue behind
   * a poisoned one); a refused single record is written again without its bodies.
   */
  private async commitWithRetry(batch: UsageRecord[], batchId: string, family: Family): Promise<void> {
    const started = Date.now();
    let records = batch;
    let refusals = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const applied = await this.commit(records, batchId, family);
        if (!applied) this.stats.duplicates++;
        family.committed.push(...records);
        if (!batchId.includes('.')) family.wholeReturned = true;
        this.stats.batches++;
        this.stats.records += records.length;
        try {
          this.opts.onCommitted?.(records);
        } catch (err) {
          this.services.log.error({ err }, 'usage listener failed');
        }
        return;
      } catch (err) {
        this.stats.failures++;
        const failure = failureOf(err);
        this.services.log.error({ err, attempt, batchId, records: records.length, failure }, 'usage batch failed; retrying');
        if (failure === 'refused') {
          if (records.length > 1) {
            const half = Math.ceil(records.length / 2);
            await this.commitWithRetry(records.slice(0, half), `${batchId}.0`, family);
            await this.commitWithRetry(records.slice(half), `${batchId}.1`, family);
            return;
          }
          refusals++;
          const [only] = records as [UsageRecord];
          if (hasBody(only)) {
            // What the database cannot take is in the bodies (too deep, not serializable): keep the call, not its text.
            records = [{ ...only, requestBody: null, responseBody: null }];
            this.stats.stripped++;
            continue;
          }
          // Refused every time: no attempt committed (a retry after a lost reply would have found its claim).
          if (refusals >= MAX_REFUSALS) return this.giveUp(records, err, true);
        } else if (this.closing && Date.now() - started > 10_000) {
          // Closing with the database unreachable: an attempt may have committed, so nothing is forfeited
          // (the instance stops; its leases expire and are reclaimed with whatever they still hold).
          family.abandoned = true;
          return this.giveUp(records, err, false);
        }
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 5_000)));
      }
    }
  }

  private giveUp(records: UsageRecord[], err: unknown, rolledBack: boolean): void {
    this.stats.dropped += records.length;
    this.services.log.error({ err, records: records.map((r) => ({ ...r, costNanos: r.costNanos.toString(), requestBody: undefined, responseBody: undefined })) }, 'usage records dropped');
    if (!rolledBack) return;
    try {
      this.opts.onGivenUp?.(records);
    } catch (err) {
      this.services.log.error({ err }, 'usage give-up listener failed');
    }
  }

  /**
   * One transaction per batch: the claim of its id, its organizations locked (those deleted since
   * their calls skipped), its rows in one statement, then one deduction per organization through
   * billing. Resolves false when the batch (or the whole it was split from) was already applied.
   */
  private async commit(batch: UsageRecord[], batchId: string, family: Family): Promise<boolean> {
    const applied = await runSqlCommand(this.services, this.pool, null, async (work) => {
      const { em } = work;
      await this.fault?.('begin', batchId, batch);
      const orgIds = [...new Set(batch.map((r) => r.orgId))].sort();
      const present = await claimBatch(em, batchId, orgIds);
      if (!present) return false;
      const records = present.size === orgIds.length ? batch : batch.filter((r) => present.has(r.orgId));
      if (records.length === 0) return true;

      const now = Date.now();
      const keysToTouch: Record<string, string> = {};
      for (const r of records) {
        const last = this.lastUsedWritten.get(r.apiKeyId) ?? 0;
        if (now - last >= LAST_USED_EVERY_MS) keysToTouch[r.apiKeyId] = r.createdAt.toISOString();
      }
      const touched = Object.keys(keysToTouch);
      const rollups = rollupRows(records);
      await em.execute(WRITE_BATCH, [
        storableJson(JSON.stringify(records.map(logRow))),
        storableJson(JSON.stringify(rollups)),
        storableJson(JSON.stringify(projectRollupRows(rollups))),
        JSON.stringify(keysToTouch),
      ]);
      await this.fault?.('written', batchId, batch);
      // One deduction per organization, in id order (the balance update row-locks the organization).
      const perOrg = new Map<string, { cost: bigint; requests: number }>();
      for (const r of records) {
        const charge = chargedNanos(r);
        if (charge === 0n) continue;
        const t = perOrg.get(r.orgId) ?? { cost: 0n, requests: 0 };
        t.cost += charge;
        t.requests++;
        perOrg.set(r.orgId, t);
      }
      const balances: [string, bigint][] = [];
      for (const orgId of [...perOrg.keys()].sort()) {
        const t = perOrg.get(orgId)!;
        const posted = await deductUsage(work, orgId, t.cost, { requestCount: t.requests, description: `Usage: ${t.requests} request${t.requests === 1 ? '' : 's'} (${nanosToDecimal(t.cost)})` });
        balances.push([orgId, posted.balanceAfterNanos]);
      }
      // Spend limits: per batch and limit, leased becomes spent (and the limit alerts see it).
      await commitBatchSpend(work, records);
      // The coalesced usage event, when one is due, commits with the batch (whole batches only).
      if (!batchId.includes('.')) this.opts.usageEvents?.inBatch(work, records, family.usage);
      await this.fault?.('beforeCommit', batchId, batch);
      work.afterCommit(() => {
        for (const id of touched) this.lastUsedWritten.set(id, now);
        // Other instances learn the balance from credits.changed; this one need not wait for it.
        for (const [orgId, balance] of balances) this.opts.onBalance?.(orgId, balance);
      });
      return true;
    });
    await this.fault?.('afterCommit', batchId, batch);
    return applied;
  }

  /** Deletes claims older than CLAIM_KEEP, at most every PRUNE_EVERY_MS, beside the batches. */
  private prune(): void {
    if (this.pruning || this.closing || performance.now() - this.lastPrunedAt < PRUNE_EVERY_MS) return;
    this.lastPrunedAt = performance.now();
    this.pruning = this.pool
      .query(`delete from usage_batch where created_at < now() - interval '${CLAIM_KEEP}'`)
      .then(
        () => {},
        (err: unknown) => this.services.log.warn({ err }, 'usage meter: pruning old batch claims failed (retried later)'),
      )
      .finally(() => {
        this.pruning = null;
      });
  }

  /** Drains, then closes the meter's connections. */
  async close(): Promise<void> {
    await this.drain();
    await this.pruning;
    await this.pool.end();
  }

  /**
   * Commits everything pending now (without waiting out the batching window) and resolves when
   * nothing is left; the meter then batches as before. For tests and benches.
   */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      await this.settle();
    } finally {
      this.flushing--;
    }
  }

  /** Commits everything pending (SIGTERM path); resolves when nothing is left. The meter stays closing. */
  async drain(): Promise<void> {
    this.closing = true;
    await this.settle();
  }

  private async settle(): Promise<void> {
    this.kick();
    while (this.running || this.pending.length > 0) {
      if (this.running) await this.running;
      else this.kick();
    }
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return /^(08|57P)/.test(code) || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection terminated/i.test(String((err as Error)?.message ?? ''));
}
