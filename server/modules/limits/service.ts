/**
 * Spend-limit settings and what they show (issue #12): member budgets (team.setBudget), and the
 * spent / limit / resetsAt figures of API keys, members and the organization's caps, read from the
 * counters the usage meter commits (spend_counter). Spent figures are committed spend: a call in
 * flight shows once its usage batch commits (within ~200 ms of its answer, GATEWAY_BATCH_WINDOW_MS).
 */
import { canChangeMember, ROLE_LABELS, type Role } from '../../../shared/permissions.js';
import { decimalToNanos, nanosToDecimal } from '../../../shared/money.js';
import { periodEnd, periodStart, type LimitPeriod } from '../../../shared/limits.js';
import type { Sql, Work } from '../../events/unit-of-work.js';
import { forbidden, notFound } from '../../errors.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import type { RowOf } from '../../db/rows.js';
import type { Membership } from '../organizations/entities.js';
import type { MemberBudget } from './entities.js';

/** A limit as the API shows it: amount (decimal dollars) and period, what its current period spent, when it resets. */
export interface LimitStatus {
  limit: string;
  period: LimitPeriod;
  spent: string;
  /** ISO instant the period ends (null: lifetime, never). */
  resetsAt: Date | null;
}

/** Counter ids, as the gateway names them (admission.ts). */
export const keyScope = (apiKeyId: string) => `key:${apiKeyId}`;
export const memberScope = (orgId: string, userId: string) => `member:${orgId}:${userId}`;
export const dayScope = (orgId: string) => `day:${orgId}`;
export const monthScope = (orgId: string) => `month:${orgId}`;

/** What each (scope, period) has spent in its current period (0 when nothing yet). */
export async function spentNow(em: Sql, items: { scope: string; period: LimitPeriod }[], now = Date.now()): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  if (items.length === 0) return out;
  const rows = await em.execute<{ scope: string; period_start: string | Date; spent: string }[]>(
    `select scope, period_start, spent_nanos::text as spent from spend_counter
      where scope in (select jsonb_array_elements_text(?::jsonb)) and (period_start = 'epoch'::timestamptz or period_start > now() - interval '32 days')`,
    [JSON.stringify(items.map((i) => i.scope))],
  );
  const at = new Map(rows.map((r) => [`${r.scope}|${new Date(r.period_start).getTime()}`, BigInt(r.spent)]));
  for (const i of items) out.set(i.scope, at.get(`${i.scope}|${periodStart(i.period, now).getTime()}`) ?? 0n);
  return out;
}

export function limitStatus(nanos: bigint | string | null, period: LimitPeriod | null, spent: bigint | undefined, now = Date.now()): LimitStatus | null {
  if (nanos === null || period === null) return null;
  return { limit: nanosToDecimal(BigInt(nanos)), period, spent: nanosToDecimal(spent ?? 0n), resetsAt: periodEnd(period, now) };
}

type BudgetRow = RowOf<typeof MemberBudget, 'user_id' | 'amount_nanos' | 'period'>;

/** Members' own budgets in an organization, by user id. */
export async function memberBudgets(em: Sql, orgId: string): Promise<Map<string, { nanos: bigint; period: LimitPeriod }>> {
  const rows = await em.execute<BudgetRow[]>('select user_id, amount_nanos, period from member_budget where org_id = ?', [orgId]);
  return new Map(rows.map((r) => [r.user_id, { nanos: BigInt(r.amount_nanos), period: r.period }]));
}

/**
 * Sets (or with `amount` null removes) a member's budget: their keys together spend at most
 * this per period. Owners and admins; only owners set an owner's. Effective on every instance's
 * gateway before the answer.
 */
export async function setMemberBudget(work: Work, actorRole: Role, orgId: string, userId: string, amount: string | null, period: LimitPeriod) {
  const { em } = work;
  const amountNanos = amount === null ? null : decimalToNanos(amount);
  // The organization first, as every membership change.
  await em.execute('select id from organization where id = ? for no key update', [orgId]);
  const member = (await em.execute<RowOf<typeof Membership, 'role'>[]>('select role from membership where org_id = ? and user_id = ?', [orgId, userId]))[0];
  if (!member) throw notFound('member');
  if (!canChangeMember(actorRole, member.role, member.role)) throw forbidden(`your role (${actorRole}) cannot set the budget of ${ROLE_LABELS[member.role]}s; ask an owner`);
  const old = (await em.execute<BudgetRow[]>('select user_id, amount_nanos, period from member_budget where org_id = ? and user_id = ? for update', [orgId, userId]))[0];
  const before = old ? { budget: { amount: nanosToDecimal(BigInt(old.amount_nanos)), period: old.period } } : { budget: null };
  const after = amountNanos === null ? { budget: null } : { budget: { amount: nanosToDecimal(amountNanos), period } };
  if (JSON.stringify(before) === JSON.stringify(after)) return memberBudgetView(em, orgId, userId);
  if (amountNanos === null) await em.execute('delete from member_budget where org_id = ? and user_id = ?', [orgId, userId]);
  else {
    await em.execute(
      `insert into member_budget (org_id, user_id, amount_nanos, period, updated_at) values (?, ?, ?, ?, now())
       on conflict (org_id, user_id) do update set amount_nanos = excluded.amount_nanos, period = excluded.period, updated_at = now()`,
      [orgId, userId, amountNanos.toString(), period],
    );
  }
  // Gateway keys carry their member's budget: every instance reads them again before this answers.
  await notifyInvalidation(work, { kind: 'organization', orgId });
  work.audit(orgId, 'member.budget_changed', { type: 'member', id: userId }, before, after);
  work.emit(orgId, { type: 'member.budget_changed', userId, budget: after.budget });
  return memberBudgetView(em, orgId, userId);
}

/** The member's budget as team.members shows it (their own, else the developers' default; null: none). */
export async function memberBudgetView(em: Sql, orgId: string, userId: string) {
  const rows = await em.execute<{ role: Role; amount_nanos: string | null; period: LimitPeriod | null; dev_nanos: string | null; dev_period: LimitPeriod | null }[]>(
    `select m.role, b.amount_nanos, b.period, o.developer_budget_nanos as dev_nanos, o.developer_budget_period as dev_period
       from membership m join organization o on o.id = m.org_id left join member_budget b on b.org_id = m.org_id and b.user_id = m.user_id
      where m.org_id = ? and m.user_id = ?`,
    [orgId, userId],
  );
  const r = rows[0];
  if (!r) throw notFound('member');
  const own = r.amount_nanos !== null && r.period !== null;
  const nanos = own ? r.amount_nanos : r.role === 'developer' ? r.dev_nanos : null;
  const period = own ? r.period : r.role === 'developer' ? r.dev_period : null;
  const spent = period ? (await spentNow(em, [{ scope: memberScope(orgId, userId), period }])).get(memberScope(orgId, userId)) : undefined;
  return { userId, ...memberSpendView(limitStatus(nanos, period, spent), nanos === null ? null : own ? 'member' : 'developerDefault') };
}

/** How team.members shows a member's budget: {amount, period} (null: none), where it comes from, spent in its period, next reset. */
export function memberSpendView(status: LimitStatus | null, source: 'member' | 'developerDefault' | null) {
  return {
    budget: status ? { amount: status.limit, period: status.period } : null,
    /** 'member': their own (team.setBudget); 'developerDefault': the organization's default for developers. */
    budgetSource: status ? source : null,
    spent: status?.spent ?? null,
    resetsAt: status?.resetsAt ?? null,
  };
}

/** Budgets, spent and resets of every listed member (team.members). */
export async function membersSpend(em: Sql, orgId: string, members: { userId: string; role: Role }[]) {
  const own = await memberBudgets(em, orgId);
  const org = (await em.execute<{ nanos: string | null; period: LimitPeriod | null }[]>('select developer_budget_nanos as nanos, developer_budget_period as period from organization where id = ?', [orgId]))[0];
  const dev = org?.nanos != null && org.period ? { nanos: BigInt(org.nanos), period: org.period } : null;
  const applied = new Map<string, { nanos: bigint; period: LimitPeriod; source: 'member' | 'developerDefault' }>();
  for (const m of members) {
    const b = own.get(m.userId);
    if (b) applied.set(m.userId, { ...b, source: 'member' });
    else if (dev && m.role === 'developer') applied.set(m.userId, { ...dev, source: 'developerDefault' });
  }
  const spent = await spentNow(em, [...applied].map(([userId, b]) => ({ scope: memberScope(orgId, userId), period: b.period })));
  return new Map(members.map((m) => {
    const b = applied.get(m.userId);
    return [m.userId, memberSpendView(b ? limitStatus(b.nanos, b.period, spent.get(memberScope(orgId, m.userId))) : null, b?.source ?? null)];
  }));
}
