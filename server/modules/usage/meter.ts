/**
 * Metering by group commit. Gateway calls hand their records to the meter after the response; the
 * meter commits them in batches, each batch ONE transaction holding the request logs, the hourly
 * rollups (with latency histograms), API keys' last use, and one ledger deduction per organization
 * through billing's deductUsage. A batch commits `windowMs` (15 ms by default) after its oldest
 * record's response, so records are committed within ~25 ms of their response under normal load,
 * and under load batches grow rather than commits running back to back.
 *
 * What a crash can lose: records live in process memory between the response and their commit.
 * SIGTERM (BuiltApp.close) stops accepting requests, waits for calls in flight, and drains every
 * pending record before exiting. kill -9 (or a power cut) loses the records not yet committed:
 * at most the last ~25 ms of answered calls per instance (plus any batch being retried while the
 * database is unreachable); those calls were served but are neither logged nor charged.
 * A committed batch is never partially applied: logs, rollups and the deduction commit together.
 */
import pg from 'pg';
import { nanosToDecimal } from '../../../shared/money.js';
import { runSqlCommand } from '../../events/unit-of-work.js';
import { deductUsage } from '../billing/ledger.js';
import type { Services } from '../../trpc/context.js';
import { LATENCY_COLUMNS, latencyBucket } from './histogram.js';

export type PaidBy = 'credits' | 'provider_key' | 'cache' | 'none';

export interface UsageRecord {
  orgId: string;
  projectId: string;
  apiKeyId: string;
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
}

export const chargedNanos = (r: UsageRecord) => (r.paidBy === 'credits' ? r.costNanos : 0n);

const LOG_COLUMNS: [string, string][] = [
  ['org_id', 'uuid'], ['project_id', 'uuid'], ['api_key_id', 'uuid'], ['provider', 'varchar'], ['model', 'varchar'],
  ['input_tokens', 'int'], ['output_tokens', 'int'], ['cached_tokens', 'int'], ['cache_write_tokens', 'int'], ['cost_nanos', 'bigint'], ['paid_by', 'text'],
  ['latency_ms', 'int'], ['ttft_ms', 'int'], ['status', 'smallint'], ['error', 'varchar'], ['cached', 'boolean'], ['streamed', 'boolean'],
  ['canceled', 'boolean'], ['request_body', 'jsonb'], ['response_body', 'jsonb'], ['created_at', 'timestamptz'],
];
const INSERT_LOGS = `insert into request_log (${LOG_COLUMNS.map(([c]) => c).join(', ')})
  select ${LOG_COLUMNS.map(([c]) => c).join(', ')} from jsonb_to_recordset(?::jsonb) as r(${LOG_COLUMNS.map(([c, t]) => `${c} ${t}`).join(', ')})`;

const ROLLUP_KEY = ['org_id', 'hour', 'project_id', 'api_key_id', 'provider', 'model'];
const ROLLUP_KEY_TYPES = ['uuid', 'timestamptz', 'uuid', 'uuid', 'varchar', 'varchar'];
const ROLLUP_SUMS: [string, string][] = [
  ['requests', 'int'], ['errors', 'int'], ['cache_hits', 'int'], ['canceled', 'int'], ['streamed', 'int'],
  ['input_tokens', 'bigint'], ['output_tokens', 'bigint'], ['cached_tokens', 'bigint'], ['cost_nanos', 'bigint'], ['charged_nanos', 'bigint'],
  ['latency_sum_ms', 'bigint'], ['ttft_sum_ms', 'bigint'], ['ttft_count', 'int'],
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

/** The detailed rollups summed per organization, hour and project. */
export function projectRollupRows(rows: RollupRow[]): RollupRow[] {
  const out = new Map<string, RollupRow>();
  for (const row of rows) {
    const id = `${row.org_id}|${row.hour}|${row.project_id}`;
    const acc = out.get(id);
    if (!acc) {
      out.set(id, { ...Object.fromEntries(PROJECT_KEY.map((k) => [k, row[k]!])), ...Object.fromEntries(ROLLUP_SUMS.map(([c]) => [c, row[c]!])) });
      continue;
    }
    for (const [c, type] of ROLLUP_SUMS) acc[c] = type === 'bigint' ? (BigInt(acc[c]!) + BigInt(row[c]!)).toString() : Number(acc[c]) + Number(row[c]);
  }
  return [...out.values()];
}

/** PostgreSQL text and jsonb cannot hold NUL characters. */
const withoutNul = (json: string) => json.replace(/\\u0000/g, '\\ufffd');

function hourOf(d: Date): string {
  return new Date(Math.floor(d.getTime() / 3_600_000) * 3_600_000).toISOString();
}

function logRow(r: UsageRecord) {
  return {
    org_id: r.orgId,
    project_id: r.projectId,
    api_key_id: r.apiKeyId,
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
}

type RollupRow = Record<string, string | number>;

export function rollupRows(records: UsageRecord[]): RollupRow[] {
  const rows = new Map<string, RollupRow & { _c: bigint; _ch: bigint; _in: bigint; _out: bigint; _cached: bigint }>();
  for (const r of records) {
    const key = ROLLUP_KEY.map((k) => (k === 'hour' ? hourOf(r.createdAt) : k === 'org_id' ? r.orgId : k === 'project_id' ? r.projectId : k === 'api_key_id' ? r.apiKeyId : k === 'provider' ? r.provider.slice(0, 40) : r.model.slice(0, 200)));
    const id = key.join('\u0001');
    let row = rows.get(id);
    if (!row) {
      row = Object.assign(Object.fromEntries(ROLLUP_KEY.map((k, i) => [k, key[i]!])), Object.fromEntries(ROLLUP_SUMS.map(([c]) => [c, 0])), {
        _c: 0n,
        _ch: 0n,
        _in: 0n,
        _out: 0n,
        _cached: 0n,
      }) as never;
      rows.set(id, row!);
    }
    const x = row!;
    (x.requests as number)++;
    if (r.status >= 400) (x.errors as number)++;
    if (r.cached) (x.cache_hits as number)++;
    if (r.canceled) (x.canceled as number)++;
    if (r.streamed) (x.streamed as number)++;
    x._in += BigInt(r.inputTokens);
    x._out += BigInt(r.outputTokens);
    x._cached += BigInt(r.cachedTokens);
    x._c += r.costNanos;
    x._ch += chargedNanos(r);
    x.latency_sum_ms = (x.latency_sum_ms as number) + Math.round(r.latencyMs);
    if (r.ttftMs !== null) {
      x.ttft_sum_ms = (x.ttft_sum_ms as number) + Math.round(r.ttftMs);
      (x.ttft_count as number)++;
    }
    const bucket = LATENCY_COLUMNS[latencyBucket(Math.round(r.latencyMs))]!;
    x[bucket] = (x[bucket] as number) + 1;
  }
  return [...rows.values()].map(({ _c, _ch, _in, _out, _cached, ...row }) => ({
    ...row,
    cost_nanos: _c.toString(),
    charged_nanos: _ch.toString(),
    input_tokens: _in.toString(),
    output_tokens: _out.toString(),
    cached_tokens: _cached.toString(),
  }));
}

export interface MeterOptions {
  windowMs: number;
  /** The meter commits on its own small connection pool, through runSqlCommand. */
  databaseUrl: string;
  maxBatch?: number;
  onCommitted?: (records: UsageRecord[]) => void;
  /** The balance a committed batch left an organization with (this instance's gateway refuses on it at once). */
  onBalance?: (orgId: string, creditsNanos: bigint) => void;
}

const LAST_USED_EVERY_MS = 60_000;

export class UsageMeter {
  private pending: UsageRecord[] = [];
  private oldestPendingAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closing = false;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly maxBatch: number;
  private readonly pool: pg.Pool;
  /** Batches committed and records lost (for tests, benches and the logs). */
  readonly stats = { batches: 0, records: 0, failures: 0, dropped: 0 };

  constructor(
    private readonly services: Services,
    private readonly opts: MeterOptions,
  ) {
    this.maxBatch = opts.maxBatch ?? 2000;
    // One batch commits at a time; a second connection covers a broken one being replaced.
    this.pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 2, idleTimeoutMillis: 60_000, application_name: 'usage-meter' });
    this.pool.on('error', (err) => this.services.log.warn({ err }, 'usage meter connection lost'));
  }

  record(r: UsageRecord): void {
    if (this.pending.length === 0) this.oldestPendingAt = performance.now();
    this.pending.push(r);
    if (!this.running) this.schedule();
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * The next batch commits `windowMs` after its oldest record was answered (at once when closing or
   * when a full batch waits). Records that arrive during a commit wait out their own window too, so
   * under load batches grow rather than commits following one another back to back.
   */
  private schedule(): void {
    if (this.running || this.pending.length === 0) return;
    const now = this.closing || this.opts.windowMs === 0 || this.pending.length >= this.maxBatch;
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
    this.running = this.commitWithRetry(batch).finally(() => {
      this.running = null;
      this.schedule();
    });
  }

  private async commitWithRetry(batch: UsageRecord[]): Promise<void> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.commit(batch, attempt > 1);
        this.stats.batches++;
        this.stats.records += batch.length;
        try {
          this.opts.onCommitted?.(batch);
        } catch (err) {
          this.services.log.error({ err }, 'usage listener failed');
        }
        return;
      } catch (err) {
        this.stats.failures++;
        this.services.log.error({ err, attempt, records: batch.length }, 'usage batch failed; retrying');
        // A record the database refuses must not hold the others back: halve until it is alone.
        if (attempt >= 3 && batch.length > 1) {
          const half = Math.ceil(batch.length / 2);
          await this.commitWithRetry(batch.slice(0, half));
          await this.commitWithRetry(batch.slice(half));
          return;
        }
        const givingUp = (attempt >= 3 && batch.length === 1 && !isConnectionError(err)) || (this.closing && Date.now() - started > 10_000);
        if (givingUp) {
          this.stats.dropped += batch.length;
          this.services.log.error({ err, records: batch.map((r) => ({ ...r, costNanos: r.costNanos.toString(), requestBody: undefined, responseBody: undefined })) }, 'usage records dropped');
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 5_000)));
      }
    }
  }

  /**
   * One transaction per batch: the batch's rows in one statement, then one deduction per
   * organization through billing. `checkOrganizations` (on retries) first drops the records of
   * organizations deleted since their call; the first attempt assumes none was.
   */
  private async commit(batch: UsageRecord[], checkOrganizations: boolean): Promise<void> {
    await runSqlCommand(this.services, this.pool, null, async (work) => {
      const { em } = work;
      let records = batch;
      if (checkOrganizations) {
        const orgIds = [...new Set(batch.map((r) => r.orgId))];
        const present = new Set(
          (await em.execute<{ id: string }[]>('select id from organization where id in (select jsonb_array_elements_text(?::jsonb)::uuid)', [JSON.stringify(orgIds)])).map((r) => r.id),
        );
        records = present.size === orgIds.length ? batch : batch.filter((r) => present.has(r.orgId));
        if (records.length === 0) return;
      }

      const now = Date.now();
      const keysToTouch: Record<string, string> = {};
      for (const r of records) {
        const last = this.lastUsedWritten.get(r.apiKeyId) ?? 0;
        if (now - last >= LAST_USED_EVERY_MS) keysToTouch[r.apiKeyId] = r.createdAt.toISOString();
      }
      const touched = Object.keys(keysToTouch);
      const rollups = rollupRows(records);
      await em.execute(WRITE_BATCH, [
        withoutNul(JSON.stringify(records.map(logRow))),
        JSON.stringify(rollups),
        JSON.stringify(projectRollupRows(rollups)),
        JSON.stringify(keysToTouch),
      ]);
      // One deduction per organization, in a fixed order (the balance update row-locks the organization).
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
      work.afterCommit(() => {
        for (const id of touched) this.lastUsedWritten.set(id, now);
        // Other instances learn the balance from credits.changed; this one need not wait for it.
        for (const [orgId, balance] of balances) this.opts.onBalance?.(orgId, balance);
      });
    });
  }

  /** Drains, then closes the meter's connections. */
  async close(): Promise<void> {
    await this.drain();
    await this.pool.end();
  }

  /** Commits everything pending (SIGTERM path); resolves when nothing is left. */
  async drain(): Promise<void> {
    this.closing = true;
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
