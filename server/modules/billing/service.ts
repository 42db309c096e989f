/** Read side of billing: the balance and the transaction history (with CSV export). */
import type { EntityManager } from '@mikro-orm/postgresql';
import { nanosToDecimal } from '../../../shared/money.js';
import type { LedgerEntry, LedgerType } from './entities.js';
import { OPEN_REFUND_SQL, REFUND_WINDOW_DAYS } from './refunds.js';
import type { RowOf } from '../../db/rows.js';

export type LedgerRow = RowOf<
  typeof LedgerEntry,
  'id' | 'type' | 'amount_nanos' | 'balance_after_nanos' | 'status' | 'description' | 'payment_intent_id' | 'invoice_id' | 'refund_id' | 'stripe_event_id' | 'created_at'
> & { actor_email: string | null; refundable: boolean };

export function transactionView(r: LedgerRow) {
  return {
    id: String(r.id),
    type: r.type,
    amount: nanosToDecimal(BigInt(r.amount_nanos)),
    creditsAfter: nanosToDecimal(BigInt(r.balance_after_nanos)),
    status: r.status,
    description: r.description,
    actor: r.actor_email,
    paymentIntentId: r.payment_intent_id,
    invoiceId: r.invoice_id,
    refundId: r.refund_id,
    stripeEventId: r.stripe_event_id,
    /** Whether the owner's Refund action applies (a purchase within the window, not refunded yet). */
    refundable: r.refundable === true,
    createdAt: r.created_at,
  };
}

/** The columns of a LedgerRow, over `credit_ledger l left join app_user u on u.id = l.actor_id`. */
export const LEDGER_COLUMNS = `l.id, l.type, l.amount_nanos, l.balance_after_nanos, l.status, l.description, l.payment_intent_id, l.invoice_id,
            l.refund_id, l.stripe_event_id, u.email as actor_email, l.created_at,
            (l.type in ('purchase', 'auto_topup') and l.status = 'completed' and l.payment_intent_id is not null
              and l.created_at > now() - make_interval(days => ${REFUND_WINDOW_DAYS})
              and not exists (select 1 from credit_ledger h where ${OPEN_REFUND_SQL.replace('?', 'l.id').replace('?', 'l.payment_intent_id')})) as refundable`;

async function ledgerPage(em: EntityManager, orgId: string, opts: { cursor?: string; limit: number; type?: LedgerType }) {
  const where = ['l.org_id = ?'];
  const params: unknown[] = [orgId];
  if (opts.type) {
    where.push('l.type = ?');
    params.push(opts.type);
  }
  if (opts.cursor) {
    where.push('l.id < ?');
    params.push(opts.cursor);
  }
  params.push(opts.limit);
  return em.execute<LedgerRow[]>(
    `select ${LEDGER_COLUMNS}
       from credit_ledger l left join app_user u on u.id = l.actor_id
      where ${where.join(' and ')} order by l.id desc limit ?`,
    params,
  );
}

export async function listTransactions(em: EntityManager, orgId: string, opts: { cursor?: string; limit?: number; type?: LedgerType }) {
  const limit = opts.limit ?? 50;
  const rows = await ledgerPage(em, orgId, { ...opts, limit: limit + 1 });
  const page = rows.slice(0, limit);
  return { items: page.map(transactionView), nextCursor: rows.length > limit ? String(page[page.length - 1]!.id) : null };
}

const CSV_COLUMNS = ['id', 'createdAt', 'type', 'status', 'amount', 'creditsAfter', 'description', 'actor', 'paymentIntentId', 'invoiceId', 'refundId', 'stripeEventId'] as const;

export function csvCell(value: unknown): string {
  const text = value instanceof Date ? value.toISOString() : value === null || value === undefined ? '' : String(value);
  // Quote always; neutralise spreadsheet formulas in free text.
  const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
  return `"${safe.replace(/"/g, '""')}"`;
}

/** The whole history (newest first) as CSV, read in pages so memory stays flat. */
export async function transactionsCsv(em: EntityManager, orgId: string, type?: LedgerType): Promise<string> {
  const lines = [CSV_COLUMNS.join(',')];
  let cursor: string | undefined;
  for (;;) {
    const rows = await ledgerPage(em, orgId, { cursor, limit: 1000, type });
    for (const r of rows) {
      const view = transactionView(r);
      lines.push(CSV_COLUMNS.map((c) => csvCell(view[c])).join(','));
    }
    if (rows.length < 1000) break;
    cursor = String(rows[rows.length - 1]!.id);
  }
  return lines.join('\r\n') + '\r\n';
}
