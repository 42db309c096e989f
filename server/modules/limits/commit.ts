/**
 * The usage meter's part of spend limits, inside each batch's transaction: the batch's settled costs
 * become spent (leaving the leases that reserved them), one aggregate statement per batch, and the
 * limit alerts (alerts.ts observeSpend) see what each touched limit has spent now. Nothing at all
 * for a batch without limited calls.
 */
import type { LimitScope } from '../../../shared/events.js';
import type { LimitPeriod } from '../../../shared/limits.js';
import type { SqlWork } from '../../events/unit-of-work.js';
import { observeSpend, type SpendObservation } from './alerts.js';
import { commitSpend, resetsAt, spendTotals, type SpendCharge } from './engine.js';

/** The limit that refused a call, as its usage record carries it to the alerts. */
export interface RefusedLimit {
  orgId: string;
  scope: LimitScope;
  subjectId: string;
  limitNanos: bigint;
  spentNanos: bigint;
  period: LimitPeriod | null;
  periodStart: Date;
}

export async function commitBatchSpend(work: SqlWork, records: readonly { spend?: readonly SpendCharge[]; refusedBy?: RefusedLimit }[]): Promise<void> {
  let charges: SpendCharge[] | null = null;
  let refused: RefusedLimit[] | null = null;
  for (const r of records) {
    if (r.spend && r.spend.length > 0) (charges ??= []).push(...r.spend);
    if (r.refusedBy) (refused ??= []).push(r.refusedBy);
  }
  if (!charges && !refused) return;
  const observations: SpendObservation[] = [];
  if (charges) {
    const totals = spendTotals(charges);
    const spentNow = await commitSpend(work.em, totals);
    for (const [k, c] of totals.counters) {
      if (!c.alert || c.limit === null) continue;
      const spent = spentNow.get(k);
      if (spent === undefined) continue;
      observations.push({
        orgId: c.orgId,
        scope: c.alert.scope,
        subjectId: c.alert.subjectId,
        limitNanos: c.limit,
        spentNanos: spent,
        periodStart: c.period && c.period !== 'lifetime' ? c.periodStart : null,
        resetsAt: resetsAt(c),
      });
    }
  }
  for (const r of refused ?? []) {
    observations.push({
      orgId: r.orgId,
      scope: r.scope,
      subjectId: r.subjectId,
      limitNanos: r.limitNanos,
      spentNanos: r.spentNanos,
      periodStart: r.period && r.period !== 'lifetime' ? r.periodStart : null,
      resetsAt: resetsAt(r),
      refused: true,
    });
  }
  if (observations.length > 0) await observeSpend(work, observations);
}
