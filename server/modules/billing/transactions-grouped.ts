/**
 * The transaction history as a person reads it: usage entries (one per metered batch, dozens an
 * hour under traffic) summed per day, or per hour for today, in the reader's time zone, with their
 * request count and cost; every other entry (purchases, refunds, top-ups, adjustments, credit-backs,
 * plan charges) on its own row. The ledger itself keeps every row (`billing.transactions`).
 *
 * Order: newest first by each row's "time": an entry's creation, a usage group's end (so a day's
 * usage sits above the purchases made during it, and its balance-after is the day's last). Paging
 * reads a time window aligned to whole days (a group is never split), widened until the page is
 * full or the ledger's first entry is reached: a page costs its window, not the whole history.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { nanosToDecimal } from '../../../shared/money.js';
import { badRequest } from '../../errors.js';
import type { LedgerType } from './entities.js';
import { csvCell, LEDGER_COLUMNS, transactionView, type LedgerRow } from './service.js';

const DAY_MS = 86_400_000;
const FIRST_WINDOW_DAYS = 35;

/** Where a row sits in the order: its time (µs since the epoch), 1 for an entry / 0 for a group, and its (last) id. */
interface Position {
  keyUs: bigint;
  rank: 0 | 1;
  id: bigint;
}

function encodePosition(p: Position): string {
  return `${p.keyUs}.${p.rank}.${p.id}`;
}

function decodePosition(cursor: string): Position {
  const m = /^(-?\d{1,19})\.([01])\.(\d{1,19})$/.exec(cursor);
  if (!m) throw badRequest('cursor is not valid');
  return { keyUs: BigInt(m[1]!), rank: Number(m[2]) as 0 | 1, id: BigInt(m[3]!) };
}

type GroupedRow = Partial<LedgerRow> & {
  kind: 'usage' | 'entry';
  key_us: string;
  rank: number;
  pos_id: string;
  bucket: string | null;
  bucket_end: string | null;
  hourly: boolean | null;
  entries: string | null;
  requests: string | null;
  amount: string | null;
  last_balance: string | null;
  last_at: string | null;
};

export type GroupedTransaction =
  | {
      kind: 'usage';
      /** Stable for the period: `usage:<period start ISO>`. */
      id: string;
      position: string;
      period: 'day' | 'hour';
      from: Date;
      to: Date;
      requests: number;
      entries: number;
      amount: string;
      creditsAfter: string;
      /** The period's last usage entry. */
      createdAt: Date;
    }
  | ({ kind: 'entry'; position: string } & ReturnType<typeof transactionView>);

function view(r: GroupedRow): GroupedTransaction {
  const position = encodePosition({ keyUs: BigInt(r.key_us), rank: r.rank === 1 ? 1 : 0, id: BigInt(r.pos_id) });
  if (r.kind === 'usage') {
    const from = new Date(r.bucket!);
    return {
      kind: 'usage',
      id: `usage:${from.toISOString()}`,
      position,
      period: r.hourly ? 'hour' : 'day',
      from,
      to: new Date(r.bucket_end!),
      requests: Number(r.requests ?? 0),
      entries: Number(r.entries ?? 0),
      amount: nanosToDecimal(BigInt(r.amount ?? 0)),
      creditsAfter: nanosToDecimal(BigInt(r.last_balance ?? 0)),
      createdAt: new Date(r.last_at!),
    };
  }
  return { kind: 'entry', position, ...transactionView(r as LedgerRow) };
}

/** One window [start, end] of the grouped history, past `after` (a position), newest first. */
async function windowRows(em: EntityManager, orgId: string, o: { tz: string; start: Date | null; after: Position | null; limit: number; type?: LedgerType }) {
  const where = ['l.org_id = ?'];
  const params: unknown[] = [orgId];
  if (o.type) {
    where.push('l.type = ?');
    params.push(o.type);
  }
  if (o.start) {
    where.push('l.created_at >= ?');
    params.push(o.start.toISOString());
  }
  if (o.after) {
    // Nothing past the cursor's time can be part of a row after it (a group's rows precede its end).
    where.push(`l.created_at <= to_timestamp(?::numeric / 1000000) + interval '1 second'`);
    params.push(o.after.keyUs.toString());
  }
  const tz = o.tz;
  const sql = `
    with today as (select date_trunc('day', now(), ?) as start),
    rows as (
      select l.id, l.type, l.amount_nanos, l.balance_after_nanos, l.request_count, l.created_at,
             case when l.type = 'usage' then date_trunc(case when l.created_at >= t.start then 'hour' else 'day' end, l.created_at, ?) end as bucket,
             l.created_at >= t.start as hourly
        from credit_ledger l, today t
       where ${where.join(' and ')}
    ),
    groups as (
      select bucket, bool_or(hourly) as hourly, count(*) as entries, coalesce(sum(request_count), 0) as requests, sum(amount_nanos) as amount,
             max(id) as last_id, max(created_at) as last_at
        from rows where bucket is not null group by bucket
    ),
    positioned as (
      select 'usage' as kind, g.last_id as pos_id, 0 as rank, g.bucket, g.hourly, g.entries, g.requests, g.amount, g.last_at,
             case when g.hourly then g.bucket + interval '1 hour' else ((g.bucket at time zone ?) + interval '1 day') at time zone ? end as key_at
        from groups g
      union all
      select 'entry', r.id, 1, null, null, null, null, null, null, r.created_at from rows r where r.bucket is null
    ),
    page as (
      select p.*, (extract(epoch from p.key_at) * 1000000)::bigint as key_us from positioned p
    )
    select pg.kind, pg.key_us::text as key_us, pg.rank, pg.pos_id::text as pos_id, pg.bucket, pg.key_at as bucket_end, pg.hourly, pg.entries::text as entries,
           pg.requests::text as requests, pg.amount::text as amount, pg.last_at,
           case when pg.kind = 'usage' then (select b.balance_after_nanos from credit_ledger b where b.id = pg.pos_id) end::text as last_balance,
           ${LEDGER_COLUMNS.replace(/\bl\.id\b/, 'l.id as entry_id')}
      from (select * from page ${o.after ? 'where (key_us, rank, pos_id) < (?::bigint, ?, ?::bigint)' : ''} order by key_us desc, rank desc, pos_id desc limit ?) pg
      left join credit_ledger l on pg.kind = 'entry' and l.id = pg.pos_id
      left join app_user u on u.id = l.actor_id
     order by pg.key_us desc, pg.rank desc, pg.pos_id desc`;
  const all = [tz, tz, ...params, tz, tz, ...(o.after ? [o.after.keyUs.toString(), o.after.rank, o.after.id.toString()] : []), o.limit];
  try {
    const rows = await em.execute<(GroupedRow & { entry_id: string | null })[]>(sql, all);
    return rows.map((r) => ({ ...r, id: r.entry_id ?? undefined }) as GroupedRow);
  } catch (err) {
    if ((err as { code?: string }).code === '22023') throw badRequest(`time zone "${tz}" is not known`);
    throw err;
  }
}

/** The first day (in `tz`) of the organization's ledger, or null when it is empty. */
async function firstEntryAt(em: EntityManager, orgId: string): Promise<Date | null> {
  const [row] = await em.execute<{ first: string | null }[]>('select min(created_at) as first from credit_ledger where org_id = ?', [orgId]);
  return row?.first ? new Date(row.first) : null;
}

/** Midnight (in `tz`) on or before `at`. */
async function dayStart(em: EntityManager, at: Date, tz: string): Promise<Date> {
  const [row] = await em.execute<{ start: string }[]>(`select date_trunc('day', ?::timestamptz, ?) as start`, [at.toISOString(), tz]);
  return new Date(row!.start);
}

export async function listGroupedTransactions(
  em: EntityManager,
  orgId: string,
  opts: { cursor?: string; limit?: number; type?: LedgerType; timeZone?: string },
): Promise<{ items: GroupedTransaction[]; nextCursor: string | null }> {
  const limit = opts.limit ?? 50;
  const tz = opts.timeZone ?? 'UTC';
  const after = opts.cursor ? decodePosition(opts.cursor) : null;
  const first = await firstEntryAt(em, orgId);
  if (!first) return { items: [], nextCursor: null };
  const end = after ? new Date(Number(after.keyUs / 1000n)) : new Date();
  let days = FIRST_WINDOW_DAYS;
  for (;;) {
    const candidate = new Date(Math.min(end.getTime(), Date.now()) - days * DAY_MS);
    const start = candidate.getTime() <= first.getTime() ? null : await dayStart(em, candidate, tz);
    const rows = await windowRows(em, orgId, { tz, start, after, limit: limit + 1, ...(opts.type ? { type: opts.type } : {}) });
    if (rows.length > limit || start === null) {
      const page = rows.slice(0, limit).map(view);
      return { items: page, nextCursor: rows.length > limit ? page[page.length - 1]!.position : null };
    }
    days *= 4;
  }
}

const GROUPED_CSV_COLUMNS = ['from', 'to', 'type', 'status', 'amount', 'creditsAfter', 'requests', 'entries', 'description', 'id', 'actor', 'paymentIntentId', 'invoiceId', 'refundId'] as const;

/** The grouped history as CSV: one row per usage period (from, to, requests, entries) and per other entry. */
export async function groupedTransactionsCsv(em: EntityManager, orgId: string, opts: { type?: LedgerType; timeZone?: string }): Promise<string> {
  const lines: string[] = [GROUPED_CSV_COLUMNS.join(',')];
  let cursor: string | undefined;
  for (;;) {
    const page = await listGroupedTransactions(em, orgId, { ...opts, limit: 500, ...(cursor ? { cursor } : {}) });
    for (const t of page.items) {
      const row: Record<(typeof GROUPED_CSV_COLUMNS)[number], unknown> =
        t.kind === 'usage'
          ? { from: t.from, to: t.to, type: 'usage', status: 'completed', amount: t.amount, creditsAfter: t.creditsAfter, requests: t.requests, entries: t.entries,
              description: `Usage: ${t.requests} request${t.requests === 1 ? '' : 's'}`, id: '', actor: '', paymentIntentId: '', invoiceId: '', refundId: '' }
          : { from: t.createdAt, to: t.createdAt, type: t.type, status: t.status, amount: t.amount, creditsAfter: t.creditsAfter, requests: '', entries: 1,
              description: t.description, id: t.id, actor: t.actor, paymentIntentId: t.paymentIntentId, invoiceId: t.invoiceId, refundId: t.refundId };
      lines.push(GROUPED_CSV_COLUMNS.map((c) => csvCell(row[c])).join(','));
    }
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return lines.join('\r\n') + '\r\n';
}
