/**
 * billing.transactionsGrouped against real PostgreSQL: usage entries summed per day (per hour
 * today) in the reader's time zone with request count, cost and the balance after the period's
 * last entry; purchases, refunds and adjustments each on their own row, in time order; pages that
 * never split a period; a window widened to reach old entries; the type filter; the CSV in both
 * views; and the ledger itself unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sql } from '../helpers/db-state.js';
import { newOwner, type Owner } from '../helpers/gateway.js';
import { decimalToNanos } from '../../shared/money.js';

let app: TestApp;
let owner: Owner;

beforeAll(async () => {
  app = await startTestApp();
  owner = await newOwner(app);
});
afterAll(async () => {
  await app?.close();
});

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A time zone where it is now between 03:00 and 21:00, so "today" has room for two past hours whatever the hour of the run. */
function roomyTimeZone(): string {
  for (const tz of ['UTC', 'Asia/Tokyo', 'America/Los_Angeles']) {
    const hour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(new Date()));
    if (hour >= 3 && hour < 21) return tz;
  }
  throw new Error('no time zone with room today');
}

type Kind = 'usage' | 'purchase' | 'refund' | 'adjustment';

async function ledger(orgId: string, rows: [Kind, string, Date, number?][]): Promise<void> {
  let balance = 0n;
  for (const [type, dollars, at, requests] of rows) {
    const amount = decimalToNanos(dollars);
    balance += amount;
    await sql(
      app,
      `insert into credit_ledger (org_id, type, amount_nanos, balance_after_nanos, status, description, request_count, created_at)
       values (?, ?, ?::bigint, ?::bigint, 'completed', ?, ?, ?::timestamptz)`,
      [orgId, type, amount.toString(), balance.toString(), type === 'usage' ? `Usage: ${requests} requests` : `${type} entry`, requests ?? null, at.toISOString()],
    );
  }
  await sql(app, 'update organization set credits_nanos = ?::bigint where id = ?', [balance.toString(), orgId]);
}

describe('billing.transactionsGrouped', () => {
  it('sums usage per day (per hour today) and keeps every other entry, in order, across pages', async () => {
    const tz = roomyTimeZone();
    const { organization } = await owner.client.organization.create.mutate({ name: 'Grouped Co' });
    const orgId = organization.id;
    const [{ start }] = (await sql<{ start: Date }>(app, `select date_trunc('day', now(), ?) as start`, [tz])) as [{ start: Date }];
    const t0 = new Date(start).getTime();
    const at = (ms: number) => new Date(t0 + ms);
    await ledger(orgId, [
      ['purchase', '100', at(-100 * DAY)],
      ['usage', '-1', at(-3 * DAY + 2 * HOUR), 2],
      ['purchase', '50', at(-3 * DAY + 3 * HOUR)],
      ['usage', '-2', at(-3 * DAY + 5 * HOUR), 3],
      ['usage', '-0.5', at(-2 * DAY + HOUR), 1],
      ['refund', '-10', at(-2 * DAY + 2 * HOUR)],
      ['usage', '-0.1', at(10 * MIN), 1],
      ['usage', '-0.2', at(20 * MIN), 2],
      ['usage', '-0.3', at(70 * MIN), 1],
      ['adjustment', '5', at(80 * MIN)],
    ]);

    const all = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: tz });
    const summary = all.items.map((t) =>
      t.kind === 'usage' ? `${t.period} ${new Date(t.from).getTime() - t0} ${t.requests}r ${t.entries}e ${t.amount} -> ${t.creditsAfter}` : `${t.type} ${t.amount} -> ${t.creditsAfter}`,
    );
    expect(summary).toEqual([
      `hour ${HOUR} 1r 1e -0.30 -> 135.90`,
      'adjustment 5.00 -> 140.90',
      'hour 0 3r 2e -0.30 -> 136.20',
      `day ${-2 * DAY} 1r 1e -0.50 -> 146.50`,
      'refund -10.00 -> 136.50',
      `day ${-3 * DAY} 5r 2e -3.00 -> 147.00`,
      'purchase 50.00 -> 149.00',
      'purchase 100.00 -> 100.00',
    ]);
    expect(all.nextCursor).toBeNull();
    const day = all.items.find((t) => t.kind === 'usage' && t.period === 'day')!;
    expect(day.kind === 'usage' && new Date(day.to).getTime() - new Date(day.from).getTime()).toBe(DAY);

    // Small pages never split a period and together give the same rows; the last one reaches back 100 days.
    const paged: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: tz, limit: 3, ...(cursor ? { cursor } : {}) });
      paged.push(...page.items.map((t) => t.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(paged).toEqual(all.items.map((t) => t.id));
    expect(new Set(paged).size).toBe(paged.length);

    // The type filter: usage periods only, or one kind of entry.
    const usage = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: tz, type: 'usage' });
    expect(usage.items.map((t) => (t.kind === 'usage' ? t.requests : -1))).toEqual([1, 3, 1, 5]);
    const purchases = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: tz, type: 'purchase' });
    expect(purchases.items.map((t) => t.kind === 'entry' && t.amount)).toEqual(['50.00', '100.00']);

    // The ledger keeps every row.
    const raw = await owner.client.billing.transactions.query({ orgId, limit: 200 });
    expect(raw.items).toHaveLength(10);

    // CSV: both views.
    const grouped = await owner.client.billing.transactionsCsv.query({ orgId, view: 'grouped', timeZone: tz });
    const lines = grouped.csv.trim().split('\r\n');
    expect(lines[0]).toBe('from,to,type,status,amount,creditsAfter,requests,entries,description,id,actor,paymentIntentId,invoiceId,refundId');
    expect(lines).toHaveLength(1 + 8);
    expect(lines.filter((l) => l.includes('"Usage: 5 requests"'))).toHaveLength(1);
    expect(grouped.filename).toMatch(/-by-day\.csv$/);
    const ledgerCsv = await owner.client.billing.transactionsCsv.query({ orgId });
    expect(ledgerCsv.csv.trim().split('\r\n')).toHaveLength(1 + 10);
  });

  it('groups by the reader’s day: the same entries fall on different days in different time zones', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Zones Co' });
    const orgId = organization.id;
    // 03:00 and 21:00 UTC five days ago: one UTC day, but two days in Tokyo (+9).
    const utcMidnight = Math.floor(Date.now() / DAY) * DAY - 5 * DAY;
    await ledger(orgId, [
      ['purchase', '20', new Date(utcMidnight - DAY)],
      ['usage', '-1', new Date(utcMidnight + 3 * HOUR), 1],
      ['usage', '-1', new Date(utcMidnight + 21 * HOUR), 1],
    ]);
    const utc = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: 'UTC' });
    expect(utc.items.filter((t) => t.kind === 'usage').map((t) => t.kind === 'usage' && t.requests)).toEqual([2]);
    const tokyo = await owner.client.billing.transactionsGrouped.query({ orgId, timeZone: 'Asia/Tokyo' });
    expect(tokyo.items.filter((t) => t.kind === 'usage').map((t) => t.kind === 'usage' && t.requests)).toEqual([1, 1]);
    await expect(owner.client.billing.transactionsGrouped.query({ orgId, timeZone: 'Mars/Olympus' })).rejects.toThrow(/time zone/);
    await expect(owner.client.billing.transactionsGrouped.query({ orgId, cursor: 'nonsense' })).rejects.toThrow(/cursor is not valid/);
  });

  it('answers an empty page for an organization without entries', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Empty Co' });
    expect(await owner.client.billing.transactionsGrouped.query({ orgId: organization.id })).toEqual({ items: [], nextCursor: null });
  });
});
