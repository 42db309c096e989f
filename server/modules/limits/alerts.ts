/**
 * Spend-limit alerts (issue #12 item 6): when an API key's spend limit, a member's budget or the
 * organization's daily or monthly cap reaches 50%, 80% or 100% of its amount, the owners and the
 * billing email (and the key's creator, or the member) get one email and every member's dashboard a
 * live `limit.alert` notice. Once per threshold per period: the state (limit_alert) remembers the
 * highest threshold notified in the current period at the current amount; a new period, or a changed
 * amount, re-arms every threshold. A jump past several thresholds at once notifies the highest only.
 *
 * NOTE FOR THE LIMITS ENGINE (L1): call `observeSpend(work, observations)` where spend is committed,
 * inside the meter's transaction (the unit of work the batch runs in), once per batch, with one
 * observation per limit the batch's records touched (skip keys and members without a limit): the
 * limit's amount and what its period has spent WITH this batch. Also pass `refused: true` for a limit
 * that refused a call in the batch (with exact reservations, committed spend rarely lands on exactly
 * 100%: the refusal is what "reached" means). It costs one statement when any observation is at 50%
 * or more, nothing otherwise; emails and the event commit with the batch (after-commit delivery).
 */
import type { LimitAlertThreshold, LimitScope } from '../../../shared/events.js';
import { formatDollars, nanosToDecimal } from '../../../shared/money.js';
import type { SqlWork } from '../../events/unit-of-work.js';
import type { RowOf } from '../../db/rows.js';
import { ownerEmails } from '../billing/notify.js';
import type { ApiKey } from '../apiKeys/entities.js';
import type { User } from '../auth/entities.js';
import type { Organization } from '../organizations/entities.js';
import type { LimitAlert } from './alert-entities.js';

export interface SpendObservation {
  orgId: string;
  scope: LimitScope;
  /** apiKey: the key's id; member: the member's user id; dailyCap / monthlyCap: the organization's id. */
  subjectId: string;
  /** The limit's amount, integer nano-dollars. */
  limitNanos: bigint;
  /** Spent in the limit's current period, this transaction's spend included. */
  spentNanos: bigint;
  /** Start of the current period (UTC); null for a lifetime limit. */
  periodStart: Date | null;
  /** When the period ends and the limit resets; null for a lifetime limit. */
  resetsAt: Date | null;
  /** A call was refused in this batch because this limit had no room left: counts as 100%. */
  refused?: boolean;
}

const LIFETIME = new Date(0);

/** The highest threshold the observation has reached (0: none). */
export function thresholdReached(o: Pick<SpendObservation, 'limitNanos' | 'spentNanos' | 'refused'>): LimitAlertThreshold | 0 {
  if (o.refused) return 100;
  if (o.limitNanos <= 0n) return 0;
  for (const t of [100, 80, 50] as const) if (o.spentNanos * 100n >= o.limitNanos * BigInt(t)) return t;
  return 0;
}

/**
 * Records the thresholds reached and, for each newly reached one, queues its emails and live event
 * in `work` (so they commit, or roll back, with the spend). Safe on any number of instances: the
 * upsert decides under the row's lock, so two batches crossing the same threshold notify once.
 */
export async function observeSpend(work: SqlWork, observations: readonly SpendObservation[]): Promise<void> {
  const reached = new Map<string, SpendObservation & { threshold: LimitAlertThreshold }>();
  for (const o of observations) {
    const threshold = thresholdReached(o);
    if (threshold === 0) continue;
    const id = `${o.orgId}|${o.scope}|${o.subjectId}`;
    const prev = reached.get(id);
    // Two observations of one limit in a batch: the later period, then the higher threshold wins.
    if (prev && ((prev.periodStart ?? LIFETIME) > (o.periodStart ?? LIFETIME) || prev.threshold >= threshold)) continue;
    reached.set(id, { ...o, threshold });
  }
  if (reached.size === 0) return;
  const rows = [...reached.values()].map((o) => ({
    org_id: o.orgId,
    scope: o.scope,
    subject_id: o.subjectId,
    period_start: (o.periodStart ?? LIFETIME).toISOString(),
    limit_nanos: o.limitNanos.toString(),
    threshold: o.threshold,
  }));
  // Newly reached: no state yet, or the state is of an earlier period, of another amount, or of a
  // lower threshold. In key order, so concurrent batches lock the rows in the same order.
  const fresh = await work.em.execute<RowOf<typeof LimitAlert, 'org_id' | 'scope' | 'subject_id'>[]>(
    `insert into limit_alert (org_id, scope, subject_id, period_start, limit_nanos, notified_threshold, notified_at)
       select org_id, scope, subject_id, period_start, limit_nanos, threshold, now()
         from jsonb_to_recordset(?::jsonb) as r(org_id uuid, scope text, subject_id uuid, period_start timestamptz, limit_nanos bigint, threshold int)
        order by org_id, scope, subject_id
     on conflict (org_id, scope, subject_id) do update
       set period_start = excluded.period_start, limit_nanos = excluded.limit_nanos, notified_threshold = excluded.notified_threshold, notified_at = now()
       where limit_alert.period_start < excluded.period_start
          or (limit_alert.period_start = excluded.period_start
              and (limit_alert.limit_nanos <> excluded.limit_nanos or limit_alert.notified_threshold < excluded.notified_threshold))
     returning org_id, scope, subject_id`,
    [JSON.stringify(rows)],
  );
  for (const row of fresh) await notify(work, reached.get(`${row.org_id}|${row.scope}|${row.subject_id}`)!);
}

type Subject = { name: string; userId: string | null; email: string | null; projectId: string | null };

async function subjectOf(work: SqlWork, o: SpendObservation): Promise<Subject> {
  const { em } = work;
  if (o.scope === 'apiKey') {
    const [k] = await em.execute<(RowOf<typeof ApiKey, 'name' | 'project_id' | 'created_by'> & { email: string | null })[]>(
      'select k.name, k.project_id, k.created_by, u.email from api_key k left join app_user u on u.id = k.created_by where k.id = ?',
      [o.subjectId],
    );
    return { name: k?.name ?? 'API key', userId: k?.created_by ?? null, email: k?.email ?? null, projectId: k?.project_id ?? null };
  }
  if (o.scope === 'member') {
    const [u] = await em.execute<RowOf<typeof User, 'name' | 'email'>[]>('select name, email from app_user where id = ?', [o.subjectId]);
    return { name: u?.name || u?.email || 'member', userId: o.subjectId, email: u?.email ?? null, projectId: null };
  }
  const [org] = await em.execute<RowOf<typeof Organization, 'name'>[]>('select name from organization where id = ?', [o.orgId]);
  return { name: org?.name ?? 'organization', userId: null, email: null, projectId: null };
}

const SCOPE_NOUN: Record<LimitScope, string> = { apiKey: 'spend limit', member: 'budget', dailyCap: 'daily spend cap', monthlyCap: 'monthly spend cap' };

/** "API key “ci” in Acme", "Ada's budget in Acme", "Acme". */
function describe(scope: LimitScope, subject: Subject, orgName: string): string {
  if (scope === 'apiKey') return `The API key “${subject.name}” in ${orgName}`;
  if (scope === 'member') return `${subject.name} (member of ${orgName})`;
  return orgName;
}

export function alertText(o: SpendObservation & { threshold: LimitAlertThreshold }, subject: Subject, orgName: string): { subject: string; text: string } {
  const noun = SCOPE_NOUN[o.scope];
  const spent = formatDollars(nanosToDecimal(o.spentNanos));
  const limit = formatDollars(nanosToDecimal(o.limitNanos));
  const who = describe(o.scope, subject, orgName);
  const its = o.scope === 'member' ? 'their' : 'its';
  const resets = o.resetsAt ? `It resets on ${o.resetsAt.toISOString().slice(0, 16).replace('T', ' ')} UTC.` : 'It is a lifetime limit: it does not reset; raise it to allow more.';
  const title = o.scope === 'apiKey' ? `API key “${subject.name}”` : o.scope === 'member' ? `${subject.name} (${orgName})` : orgName;
  if (o.threshold === 100) {
    return {
      subject: `${title}: ${noun} reached`,
      text: `${who} has reached ${its} ${noun} of ${limit} (${spent} spent). Calls that would spend more are refused until it resets or the limit is raised. ${resets}`,
    };
  }
  return {
    subject: `${title}: ${o.threshold}% of the ${noun} used`,
    text: `${who} has spent ${spent} of ${its} ${noun} of ${limit} (${o.threshold}%). ${resets}`,
  };
}

async function notify(work: SqlWork, o: SpendObservation & { threshold: LimitAlertThreshold }): Promise<void> {
  const subject = await subjectOf(work, o);
  const [org] = await work.em.execute<RowOf<typeof Organization, 'name'>[]>('select name from organization where id = ?', [o.orgId]);
  const orgName = org?.name ?? 'your organization';
  const message = alertText(o, subject, orgName);
  const to = new Set(await ownerEmails(work.em, o.orgId));
  if (subject.email) to.add(subject.email.toLowerCase());
  for (const address of to) work.email(address, message.subject, message.text);
  work.emit(o.orgId, {
    type: 'limit.alert',
    scope: o.scope,
    subjectId: o.subjectId,
    name: subject.name,
    userId: subject.userId,
    projectId: subject.projectId,
    threshold: o.threshold,
    spent: nanosToDecimal(o.spentNanos),
    limit: nanosToDecimal(o.limitNanos),
    resetsAt: o.resetsAt ? o.resetsAt.toISOString() : null,
  });
}
