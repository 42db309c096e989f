/** The plan: what each one includes (from shared/plans.ts), upgrading to Pro, and cancelling at period end. */
import { createSignal, For, Match, Show, Switch } from 'solid-js';
import { PLAN_IDS, PLANS, type Plan, type PlanId } from '../../../../shared/plans.js';
import { api } from '../../api.js';
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
  { label: 'Organizations per user', short: 'Orgs per user', value: (p) => limit(p.organizationsPerUser) },
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
              <strong>Free</strong>. Upgrade to Pro to keep request bodies for {days(PLANS.pro.retentionDays.retain)} and get {PLANS.pro.support.toLowerCase()}.
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

      <Show when={canManage()} fallback={<p class="role-note plan-note">Only owners can change the plan.</p>}>
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
            <div class="form-actions">
              <Button variant="ghost" class="text-danger" loading={canceling()} onClick={() => void cancel()}>
                Cancel at period end
              </Button>
              <span class="field-hint">Pro stays until {endsAt()}.</span>
            </div>
          </Match>
          <Match when={planId() === 'pro' && sub()?.cancelAtPeriodEnd}>
            <p class="field-hint plan-note">You can subscribe again once the current period has ended.</p>
          </Match>
        </Switch>
      </Show>
    </Card>
  );
}
