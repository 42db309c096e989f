/**
 * Budget alerts: "balance below X" and "spend this month above Y". Each crossing notifies once
 * (email to owners and the billing email, a live event, a dashboard banner) and re-arms when the
 * condition clears. Evaluated inside the transaction that moves the balance.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import type { Sql, SqlWork, Work } from '../../events/unit-of-work.js';
import { centsToNanos } from './account.js';
import type { BalanceObserver } from './ledger.js';
import { ownerEmails } from './notify.js';
import type { RowOf } from '../../db/rows.js';
import type { Organization } from '../organizations/entities.js';
import type { BudgetAlert } from './entities.js';

export type AlertKind = 'balance_below' | 'monthly_spend_above';

type AlertRow = RowOf<typeof BudgetAlert, 'id' | 'kind' | 'threshold_nanos' | 'triggered' | 'last_triggered_at'>;

export async function listBudgetAlerts(em: EntityManager, orgId: string) {
  const rows = await em.execute<AlertRow[]>('select id, kind, threshold_nanos, triggered, last_triggered_at from budget_alert where org_id = ? order by kind', [orgId]);
  const spend = await monthlySpend(em, orgId);
  return {
    monthlySpend: nanosToDecimal(spend),
    alerts: rows.map((r) => ({ id: r.id, kind: r.kind, threshold: nanosToDecimal(BigInt(r.threshold_nanos)), triggered: r.triggered, lastTriggeredAt: r.last_triggered_at })),
  };
}

export async function monthlySpend(em: Sql, orgId: string): Promise<bigint> {
  const rows = await em.execute<{ spent: string | null }[]>(
    `select -coalesce(sum(amount_nanos), 0) as spent from credit_ledger
      where org_id = ? and status = 'completed' and type in ('usage', 'usage_credit') and created_at >= date_trunc('month', now())`,
    [orgId],
  );
  return BigInt(rows[0]?.spent ?? 0);
}

/** Sets (or with threshold null, removes) the alert of that kind. */
export async function setBudgetAlert(work: Work, orgId: string, kind: AlertKind, thresholdCents: number | null) {
  const { em } = work;
  if (thresholdCents === null) {
    await em.execute('delete from budget_alert where org_id = ? and kind = ?', [orgId, kind]);
  } else {
    await em.execute(
      `insert into budget_alert (id, org_id, kind, threshold_nanos, triggered, created_at) values (?, ?, ?, ?::bigint, false, now())
       on conflict (org_id, kind) do update set threshold_nanos = excluded.threshold_nanos, triggered = false`,
      [randomUUID(), orgId, kind, centsToNanos(thresholdCents).toString()],
    );
    await evaluateAlerts(work, orgId);
  }
  work.audit(orgId, 'billing.budget_alert_set', { type: 'budget_alert', id: kind }, null, { kind, threshold: thresholdCents === null ? null : nanosToDecimal(centsToNanos(thresholdCents)) });
  work.emit(orgId, { type: 'billing.updated', reason: 'budget_alert' });
  return listBudgetAlerts(em, orgId);
}

export async function evaluateAlerts(work: SqlWork, orgId: string): Promise<void> {
  const { em } = work;
  const alerts = await em.execute<AlertRow[]>('select id, kind, threshold_nanos, triggered, last_triggered_at from budget_alert where org_id = ? for update', [orgId]);
  if (alerts.length === 0) return;
  const balanceRows = await em.execute<RowOf<typeof Organization, 'credits_nanos' | 'name'>[]>('select credits_nanos, name from organization where id = ?', [orgId]);
  const balance = BigInt(balanceRows[0]!.credits_nanos);
  const orgName = balanceRows[0]!.name;
  let spend: bigint | null = null;
  for (const alert of alerts) {
    const threshold = BigInt(alert.threshold_nanos);
    let value: bigint;
    let crossed: boolean;
    if (alert.kind === 'balance_below') {
      value = balance;
      crossed = balance < threshold;
    } else {
      spend ??= await monthlySpend(em, orgId);
      value = spend;
      crossed = spend > threshold;
    }
    if (crossed && !alert.triggered) {
      await em.execute('update budget_alert set triggered = true, last_triggered_at = now() where id = ?', [alert.id]);
      const what =
        alert.kind === 'balance_below'
          ? `The credit balance of ${orgName} is ${formatDollars(nanosToDecimal(value))}, below your alert of ${formatDollars(nanosToDecimal(threshold))}.`
          : `${orgName} has spent ${formatDollars(nanosToDecimal(value))} this month, above your alert of ${formatDollars(nanosToDecimal(threshold))}.`;
      for (const to of await ownerEmails(em, orgId)) work.email(to, alert.kind === 'balance_below' ? 'Low credit balance' : 'Monthly spend alert', what);
      work.emit(orgId, { type: 'budget.alert', kind: alert.kind, threshold: nanosToDecimal(threshold), value: nanosToDecimal(value) });
    } else if (!crossed && alert.triggered) {
      // The condition cleared: arm it again for the next crossing.
      await em.execute('update budget_alert set triggered = false where id = ?', [alert.id]);
    }
  }
}

/** The balance observer for budget alerts (in the list createServices builds). */
export const budgetAlertObserver: BalanceObserver = async (work, orgId, change) => {
  if (change.hasAlerts) await evaluateAlerts(work, orgId);
};
