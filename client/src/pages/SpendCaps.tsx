/**
 * Settings › Spend caps (issue #12; owners change them): the organization's daily and monthly caps
 * on credits spent, with what today and this month have spent (live), and its cap on calls in
 * flight at once. Other roles see the same figures with the reason they cannot change them.
 */
import { createEffect, createSignal, on, Show } from 'solid-js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { api, errorCode, errorMessage, fieldErrorsOf } from '../api.js';
import { useOrg, type Organization } from '../state/org-context.js';
import { Button, Card, createAction, TextField } from '../ui/components.js';
import { createSpendRefresh, parseAmount, SpendMeter } from '../ui/limits.js';
import { toast } from '../ui/toast.js';
import { formatMoney } from '../ui/format.js';
import { decimalToNanos } from '../../../shared/money.js';

/** The caps as organization.get returns them (decimal dollars; null: no cap). */
const capsOf = (o: Organization | null) => ({ dailySpendCap: o?.dailySpendCap ?? null, monthlySpendCap: o?.monthlySpendCap ?? null, maxConcurrentCalls: o?.maxConcurrentCalls ?? null });

const DAY = 86_400_000;
const HOUR = 3_600_000;
const dayStart = (now: number) => new Date(Math.floor(now / DAY) * DAY);
const monthStart = (now: number) => {
  const d = new Date(now);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
};
const nextMonth = (now: number) => {
  const d = new Date(now);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
};

export function SpendCaps() {
  const ctx = useOrg();
  const canEdit = () => ctx.can('billing.manage'); // owners only, as every money setting
  /** The caps the form started from (what "changed" is measured against). */
  const [caps, setCaps] = createSignal(capsOf(ctx.org()));
  const [daily, setDaily] = createSignal(caps().dailySpendCap ?? '');
  const [monthly, setMonthly] = createSignal(caps().monthlySpendCap ?? '');
  const [concurrent, setConcurrent] = createSignal(caps().maxConcurrentCalls?.toString() ?? '');
  const [errors, setErrors] = createSignal<Record<string, string | undefined>>({});
  const same = (text: string, value: string | null) => (text.trim() === '' ? value === null : value !== null && Number(text.replace(/^\$/, '').replace(/,/g, '')) === Number(value));
  const dirty = () => !same(daily(), caps().dailySpendCap) || !same(monthly(), caps().monthlySpendCap) || !same(concurrent(), caps().maxConcurrentCalls?.toString() ?? null);
  const load = (c: ReturnType<typeof capsOf>) => {
    setCaps(c);
    setDaily(c.dailySpendCap ?? '');
    setMonthly(c.monthlySpendCap ?? '');
    setConcurrent(c.maxConcurrentCalls?.toString() ?? '');
  };
  // Someone else saved: take their values, unless I am editing (then mine stay, and saving tells).
  createEffect(
    on(
      () => JSON.stringify(capsOf(ctx.org())),
      () => {
        if (!dirty()) load(capsOf(ctx.org()));
      },
      { defer: true },
    ),
  );

  // What credits today and this month have spent (UTC): a capped period's exact counter (what the
  // cap checks), else the hourly rollups' credits charged. Live, throttled.
  const [spent, setSpent] = createSignal<{ today: string; month: string; chargedToday: string; chargedMonth: string } | null>(null);
  const loadSpent = async () => {
    const orgId = ctx.orgId();
    const now = Date.now();
    const to = new Date(Math.floor(now / HOUR) * HOUR + HOUR);
    const org = await api.organization.get.query({ orgId });
    const charged = async (from: Date) => (await api.analytics.summary.query({ orgId, from, to })).charged;
    const [chargedToday, chargedMonth] = await Promise.all([charged(dayStart(now)), charged(monthStart(now))]);
    if (orgId !== ctx.orgId()) return;
    setSpent({ today: org.dailySpend?.spent ?? chargedToday, month: org.monthlySpend?.spent ?? chargedMonth, chargedToday, chargedMonth });
    // Caps changed by another owner reach this page here (organization.updated carries no caps).
    const mine = ctx.org();
    if (mine && org.version >= mine.version && JSON.stringify(capsOf(org)) !== JSON.stringify(capsOf(mine))) ctx.setOrg({ ...mine, ...capsOf(org), version: org.version });
  };
  createEffect(on(() => ctx.orgId(), () => void loadSpent().catch(() => setSpent(null))));
  createSpendRefresh(ctx.onEvent, () => void loadSpent().catch(() => {}), (e) => e.type === 'organization.updated');

  const [saving, save] = createAction(
    async () => {
      const d = parseAmount(daily(), { max: 10_000_000 });
      const m = parseAmount(monthly(), { max: 10_000_000 });
      const next: Record<string, string | undefined> = {};
      if (!d.ok) next.dailySpendCap = d.error;
      if (!m.ok) next.monthlySpendCap = m.error;
      const c = concurrent().trim();
      const calls = c === '' ? null : Number(c);
      if (calls !== null && (!Number.isInteger(calls) || calls < 1 || calls > 100_000)) next.maxConcurrentCalls = 'Enter a whole number of calls from 1 to 100,000, or leave it empty for no cap';
      if (d.ok && m.ok && d.value !== null && m.value !== null && Number(d.value) > Number(m.value)) next.dailySpendCap = 'The daily cap cannot be above the monthly cap';
      if (Object.keys(next).length || !d.ok || !m.ok) return setErrors(next);
      setErrors({});
      const input: Parameters<typeof api.organization.update.mutate>[0] = { orgId: ctx.orgId(), version: ctx.org()!.version };
      if (!same(daily(), caps().dailySpendCap)) input.dailySpendCap = d.value;
      if (!same(monthly(), caps().monthlySpendCap)) input.monthlySpendCap = m.value;
      if (!same(concurrent(), caps().maxConcurrentCalls?.toString() ?? null)) input.maxConcurrentCalls = calls;
      const updated = await api.organization.update.mutate(input);
      load(capsOf(updated));
      ctx.setOrg(updated);
      void loadSpent().catch(() => {});
      toast.success('Spend caps saved.');
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        if (Object.keys(fields).length) return setErrors(fields);
        if (errorCode(err) === 'CONFLICT') void ctx.reloadOrg();
        setErrors({ form: errorMessage(err) });
      },
    },
  );

  const now = () => Date.now();
  return (
    <Card
      id="spend-caps"
      title="Spend caps"
      description="Hard caps on the credits this organization spends (UTC days and months), and on calls in flight at once. A call that would pass a cap is refused before it costs anything; alerts go to the owners and the billing email at 50%, 80% and 100%."
    >
      <div class="limit-grid">
        <div class="limit-stat">
          <p class="limit-stat-label">Today</p>
          <SpendMeter spent={spent()?.today ?? null} limit={caps().dailySpendCap} period="day" resetsAt={new Date(dayStart(now()).getTime() + DAY)} label="Credits spent today against the daily cap" testId="spent-today" noLimit="no daily cap" />
          <SinceSet counted={spent()?.today} total={spent()?.chargedToday} capped={caps().dailySpendCap !== null} when="today" />
        </div>
        <div class="limit-stat">
          <p class="limit-stat-label">This month</p>
          <SpendMeter spent={spent()?.month ?? null} limit={caps().monthlySpendCap} period="month" resetsAt={nextMonth(now())} label="Credits spent this month against the monthly cap" testId="spent-month" noLimit="no monthly cap" />
          <SinceSet counted={spent()?.month} total={spent()?.chargedMonth} capped={caps().monthlySpendCap !== null} when="this month" />
        </div>
      </div>
      <form
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <div class="form-grid">
          <TextField label="Daily spend cap ($)" inputmode="decimal" placeholder="no cap" value={daily()} onInput={setDaily} error={errors().dailySpendCap} disabled={!canEdit()} hint="Credits per UTC day. Empty: no cap." />
          <TextField label="Monthly spend cap ($)" inputmode="decimal" placeholder="no cap" value={monthly()} onInput={setMonthly} error={errors().monthlySpendCap} disabled={!canEdit()} hint="Credits per calendar month (UTC). Empty: no cap." />
          <TextField
            label="Max concurrent calls"
            type="number"
            min="1"
            inputmode="numeric"
            placeholder="no cap"
            value={concurrent()}
            onInput={setConcurrent}
            error={errors().maxConcurrentCalls}
            disabled={!canEdit()}
            hint="Calls in flight at once, on all instances; more are refused with 429. Empty: no cap."
          />
        </div>
        <Show when={errors().form}>
          <p class="field-error" role="alert">
            {errors().form}
          </p>
        </Show>
        <Show when={canEdit()} fallback={<p class="role-note">Your role ({ROLE_LABELS[ctx.role() ?? 'developer']}) can view the caps. Only owners change them.</p>}>
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={saving()} disabled={!dirty()}>
              Save caps
            </Button>
          </div>
        </Show>
      </form>
    </Card>
  );
}

/** A cap counts the calls made while it is set: say so when the period's credits spent in all are more. */
function SinceSet(props: { counted: string | undefined; total: string | undefined; capped: boolean; when: string }) {
  const more = () => {
    if (!props.capped || props.counted === undefined || props.total === undefined) return false;
    try {
      return decimalToNanos(props.total) > decimalToNanos(props.counted);
    } catch {
      return false;
    }
  };
  return (
    <Show when={more()}>
      <p class="muted small">
        {formatMoney(props.total)} of credits spent {props.when} in all; the cap counts calls made since it was set.
      </p>
    </Show>
  );
}
