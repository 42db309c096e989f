/**
 * The plan: what each one includes (from shared/plans.ts), upgrading to Pro, switching monthly and
 * yearly (prorated, charged now), cancelling at period end and resuming before it ends.
 */
import { createSignal, For, Match, Show, Switch } from 'solid-js';
import { PLAN_IDS, PLANS, type Plan, type PlanId } from '../../../../shared/plans.js';
import { api, errorMessage } from '../../api.js';
import type { BillingOverview } from '../../state/billing.js';
import { useOrg } from '../../state/org-context.js';
import { confirmAction } from '../../ui/confirm.js';
import { Badge, Button, Card, createAction } from '../../ui/components.js';
import { formatDate, formatMoney } from '../../ui/format.js';
import { toast } from '../../ui/toast.js';
import { goToCheckout } from './common.js';

type Cycle = 'monthly' | 'yearly';

/** "$50", "$1,500", "$49.50". */
export function priceText(cents: number): string {
  return formatMoney((cents / 100).toFixed(2)).replace(/\.00$/, '');
}

const limit = (n: number | null) => (n === null ? 'Custom' : String(n));
const days = (n: number | null) => (n === null ? 'Custom' : `${n} days`);

function planPrice(p: Plan): string {
  if (!p.priceCents) return 'Custom';
  if (p.priceCents.monthly === 0) return 'Free';
  return `${priceText(p.priceCents.monthly)}/month or ${priceText(p.priceCents.yearly)}/year`;
}

/** `short` is what a phone shows. */
const ROWS: { label: string; short: string; value: (p: Plan) => string }[] = [
  { label: 'Price', short: 'Price', value: planPrice },
  { label: 'Projects per organization', short: 'Projects per org', value: (p) => limit(p.projectsPerOrganization) },
  // Counted per user; the best plan among the organizations they own sets the number.
  { label: 'Organizations you may own (set by your best plan)', short: 'Orgs you may own', value: (p) => limit(p.organizationsPerUser) },
  { label: 'Log retention, metadata only', short: 'Logs, metadata', value: (p) => days(p.retentionDays.none) },
  { label: 'Log retention, with request bodies', short: 'Logs, bodies', value: (p) => days(p.retentionDays.retain) },
  { label: 'Support', short: 'Support', value: (p) => p.support },
];

const LIVE = new Set(['active', 'trialing', 'past_due']);

export function PlanCard(props: { overview: BillingOverview }) {
  const ctx = useOrg();
  const canManage = () => ctx.can('billing.manage');
  const planId = () => ((PLAN_IDS as readonly string[]).includes(props.overview.plan) ? props.overview.plan : 'free') as PlanId;
  const plan = () => PLANS[planId()];
  const sub = () => props.overview.subscription;
  const liveSubscription = () => !!sub() && LIVE.has(sub()!.status ?? '');
  const endsAt = () => (sub()?.periodEnd ? formatDate(sub()!.periodEnd) : 'the end of the period');

  const pro = PLANS.pro.priceCents!;
  const yearlySaving = pro.monthly * 12 - pro.yearly;
  const [cycle, setCycle] = createSignal<Cycle>('monthly');

  const [upgrading, upgrade] = createAction(async () => {
    const result = await api.billing.changePlan.mutate({ orgId: ctx.orgId(), plan: 'pro', billingCycle: cycle() });
    if ('checkoutUrl' in result && result.checkoutUrl) {
      goToCheckout(result.checkoutUrl);
      await new Promise((resolve) => setTimeout(resolve, 8000));
      return;
    }
    toast.success('Subscription updated.');
    void ctx.billing.refresh();
  });

  const [canceling, cancel] = createAction(async () => {
    const ok = await confirmAction({
      title: 'Cancel Pro at the end of the period?',
      body: `Pro stays until ${endsAt()}; then ${ctx.org()?.name} returns to the Free plan. Existing projects and data are kept, but creating more than Free allows is refused, and log retention drops to ${days(PLANS.free.retentionDays.retain)}.`,
      confirmLabel: 'Cancel at period end',
      danger: true,
    });
    if (!ok) return;
    const result = await api.billing.cancelSubscription.mutate({ orgId: ctx.orgId() });
    toast.success(`Pro stays until ${result.periodEnd ? formatDate(result.periodEnd) : endsAt()}, then the plan becomes Free.`);
    void ctx.billing.refresh();
  });

  return (
    <Card title="Plan" id="plan" actions={<Badge tone={planId() === 'free' ? 'neutral' : 'accent'}>{plan().name}</Badge>}>
      <div class="plan-summary" data-testid="plan-summary">
        <Switch>
          <Match when={planId() === 'enterprise'}>
            <p>
              <strong>Enterprise</strong>: limits and retention are set with our team. Contact support to change them.
            </p>
          </Match>
          <Match when={planId() === 'pro' && sub()?.cancelAtPeriodEnd}>
            <p>
              <strong>Pro until {endsAt()}</strong>, then Free. The subscription is canceled and will not renew.
            </p>
          </Match>
          <Match when={planId() === 'pro'}>
            <p>
              <strong>Pro</strong>, billed {props.overview.billingCycle ?? 'monthly'}
              <Show when={sub()?.periodEnd}>; renews on {endsAt()}</Show>.
            </p>
          </Match>
          <Match when={true}>
            <p>
              <strong>Free</strong>. Upgrade to Pro for up to {PLANS.pro.projectsPerOrganization} projects, request bodies kept {days(PLANS.pro.retentionDays.retain)} and{' '}
              {PLANS.pro.support.toLowerCase()}.
            </p>
          </Match>
        </Switch>
        <Show when={sub()?.status === 'past_due'}>
          <div class="callout callout-danger">
            <div class="callout-body">
              <p class="callout-title">The last Pro payment failed</p>
              <p>Stripe retries it. Make sure the default payment method works, or Pro ends.</p>
            </div>
          </div>
        </Show>
      </div>

      <div class="table-wrap">
        <table class="table table-compact plan-table">
          <caption class="sr-only">What each plan includes</caption>
          <thead>
            <tr>
              <th scope="col">
                <span class="sr-only">Feature</span>
              </th>
              <For each={PLAN_IDS}>
                {(id) => (
                  <th scope="col" classList={{ 'plan-current': id === planId() }}>
                    {PLANS[id].name}
                    <Show when={id === planId()}>
                      <span class="sr-only"> (current plan)</span>
                    </Show>
                  </th>
                )}
              </For>
            </tr>
          </thead>
          <tbody>
            <For each={ROWS}>
              {(row) => (
                <tr>
                  <th scope="row">
                    <span class="hide-sm">{row.label}</span>
                    <span class="show-sm">{row.short}</span>
                  </th>
                  <For each={PLAN_IDS}>{(id) => <td classList={{ 'plan-current': id === planId() }}>{row.value(PLANS[id])}</td>}</For>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>

      <Show when={canManage()} fallback={<p class="role-note plan-note">Only owners can change the plan, switch billing cycle or resume a cancellation.</p>}>
        <Switch>
          <Match when={planId() === 'free' && !liveSubscription()}>
            <form
              class="plan-upgrade"
              onSubmit={(e) => {
                e.preventDefault();
                void upgrade();
              }}
            >
              <fieldset class="radio-group">
                <legend class="sr-only">Billing cycle for Pro</legend>
                <label class="radio-card" classList={{ selected: cycle() === 'monthly' }}>
                  <input type="radio" name="cycle" value="monthly" checked={cycle() === 'monthly'} onChange={() => setCycle('monthly')} />
                  <span>
                    <span class="radio-title">Monthly · {priceText(pro.monthly)}/month</span>
                    <span class="radio-detail">Cancel any time; Pro lasts until the end of the month paid for.</span>
                  </span>
                </label>
                <label class="radio-card" classList={{ selected: cycle() === 'yearly' }}>
                  <input type="radio" name="cycle" value="yearly" checked={cycle() === 'yearly'} onChange={() => setCycle('yearly')} />
                  <span>
                    <span class="radio-title">Yearly · {priceText(pro.yearly)}/year</span>
                    <span class="radio-detail">{yearlySaving > 0 ? `Saves ${priceText(yearlySaving)} a year against monthly.` : 'Billed once a year.'}</span>
                  </span>
                </label>
              </fieldset>
              <div class="form-actions">
                <Button type="submit" variant="primary" loading={upgrading()}>
                  Upgrade to Pro ({cycle() === 'monthly' ? `${priceText(pro.monthly)}/month` : `${priceText(pro.yearly)}/year`})
                </Button>
                <span class="field-hint">Paid by card through Checkout, separately from credits.</span>
              </div>
            </form>
          </Match>
          <Match when={planId() === 'pro' && liveSubscription() && !sub()?.cancelAtPeriodEnd}>
            <CycleSwitch overview={props.overview} />
            <div class="form-actions plan-cancel">
              <Button variant="ghost" class="text-danger" loading={canceling()} onClick={() => void cancel()}>
                Cancel at period end
              </Button>
              <span class="field-hint">Pro stays until {endsAt()}.</span>
            </div>
          </Match>
          <Match when={planId() === 'pro' && liveSubscription() && sub()?.cancelAtPeriodEnd}>
            <ResumeSubscription endsAt={endsAt()} />
          </Match>
          <Match when={planId() === 'pro' && sub()?.cancelAtPeriodEnd}>
            <p class="field-hint plan-note">You can subscribe again once the current period has ended.</p>
          </Match>
        </Switch>
      </Show>
    </Card>
  );
}

const DAY_MS = 86_400_000;
/** The length of a period of each cycle, as the estimate counts it (Stripe prorates by the second). */
const CYCLE_DAYS: Record<Cycle, number> = { monthly: 30, yearly: 365 };

/**
 * What switching does now, before the owner confirms: the price difference and the prorated
 * amount (the unused part of the current period credited, the new period charged today).
 */
export function switchEstimate(from: Cycle, periodEnd: Date | string | null, nowMs = Date.now()) {
  const pro = PLANS.pro.priceCents!;
  const to: Cycle = from === 'monthly' ? 'yearly' : 'monthly';
  const price = (c: Cycle) => (c === 'monthly' ? pro.monthly : pro.yearly);
  const endMs = periodEnd ? new Date(periodEnd).getTime() : nowMs;
  const unused = Math.max(0, Math.min(1, (endMs - nowMs) / (CYCLE_DAYS[from] * DAY_MS)));
  const creditCents = Math.round(price(from) * unused);
  const dueCents = price(to) - creditCents;
  return {
    to,
    creditCents,
    chargeNowCents: Math.max(0, dueCents),
    leftOverCents: Math.max(0, -dueCents),
    yearlySavingCents: pro.monthly * 12 - pro.yearly,
    newPeriodEnd: new Date(nowMs + CYCLE_DAYS[to] * DAY_MS),
  };
}

function CycleSwitch(props: { overview: BillingOverview }) {
  const ctx = useOrg();
  const pro = PLANS.pro.priceCents!;
  const from = (): Cycle => (props.overview.billingCycle === 'yearly' ? 'yearly' : 'monthly');
  const estimate = () => switchEstimate(from(), props.overview.subscription?.periodEnd ?? null);
  const [error, setError] = createSignal<string | null>(null);
  const nowText = () => {
    const e = estimate();
    const credit = `the unused part of your ${from() === 'monthly' ? 'month' : 'year'} (about ${priceText(e.creditCents)}) is credited`;
    if (e.to === 'yearly') return `Switching now: ${credit} and about ${priceText(e.chargeNowCents)} is charged to your card today. The yearly period starts today and renews on ${formatDate(e.newPeriodEnd)}.`;
    return `Switching now: ${credit}; it pays the first month, and about ${priceText(e.leftOverCents)} stays as credit for the next invoices. The monthly period starts today and renews on ${formatDate(e.newPeriodEnd)}.`;
  };
  const [switching, doSwitch] = createAction(
    async () => {
      setError(null);
      const e = estimate();
      const ok = await confirmAction({
        title: e.to === 'yearly' ? 'Switch to yearly billing?' : 'Switch to monthly billing?',
        body: nowText(),
        confirmLabel: e.to === 'yearly' ? `Switch and pay about ${priceText(e.chargeNowCents)}` : 'Switch to monthly',
      });
      if (!ok) return;
      const result = await api.billing.changePlan.mutate({ orgId: ctx.orgId(), plan: 'pro', billingCycle: e.to });
      const switched = 'switched' in result ? result.switched : null;
      const paid = switched?.invoice ? ` Invoice ${switched.invoice.number ?? ''}: ${formatMoney(switched.invoice.amount)} paid.`.replace('  ', ' ') : '';
      toast.success(`Pro is now billed ${e.to}.${paid}`);
      await Promise.all([ctx.billing.refresh(), ctx.reloadOrg()]);
    },
    { onError: (err) => setError(errorMessage(err)) },
  );
  return (
    <div class="cycle-switch" data-testid="cycle-switch">
      <h3 class="cycle-title">Billing cycle</h3>
      <p>
        Billed <strong>{from()}</strong>: {from() === 'monthly' ? `${priceText(pro.monthly)}/month (${priceText(pro.monthly * 12)} a year)` : `${priceText(pro.yearly)}/year`}.{' '}
        {from() === 'monthly'
          ? `Yearly is ${priceText(pro.yearly)}/year, ${priceText(estimate().yearlySavingCents)} less.`
          : `Monthly is ${priceText(pro.monthly)}/month, ${priceText(estimate().yearlySavingCents)} more a year.`}
      </p>
      <p class="field-hint" data-testid="cycle-switch-now">{nowText()}</p>
      <Show when={error()}>
        <p class="form-error" role="alert">
          {error()}
        </p>
      </Show>
      <div class="form-actions">
        <Button variant="secondary" loading={switching()} onClick={() => void doSwitch()}>
          {estimate().to === 'yearly' ? `Switch to yearly (${priceText(pro.yearly)}/year)` : `Switch to monthly (${priceText(pro.monthly)}/month)`}
        </Button>
      </div>
    </div>
  );
}

function ResumeSubscription(props: { endsAt: string }) {
  const ctx = useOrg();
  const [error, setError] = createSignal<string | null>(null);
  const [resuming, resume] = createAction(
    async () => {
      setError(null);
      const result = await api.billing.resumeSubscription.mutate({ orgId: ctx.orgId() });
      toast.success(`Pro continues; it renews on ${result.periodEnd ? formatDate(result.periodEnd) : props.endsAt}.`);
      await ctx.billing.refresh();
    },
    { onError: (err) => setError(errorMessage(err)) },
  );
  return (
    <div class="callout callout-warning resume-callout" data-testid="resume-subscription">
      <div class="callout-body">
        <p class="callout-title">Pro ends on {props.endsAt}</p>
        <p>Resume before then to keep Pro; it renews as before and nothing is charged now.</p>
        <Show when={error()}>
          <p class="form-error" role="alert">
            {error()}
          </p>
        </Show>
        <div class="form-actions">
          <Button variant="primary" loading={resuming()} onClick={() => void resume()}>
            Resume subscription
          </Button>
        </div>
      </div>
    </div>
  );
}
