/** Saved payment methods: the default one pays auto top-up. Added through a Checkout in setup mode. */
import { For, Show } from 'solid-js';
import { api } from '../../api.js';
import type { BillingOverview, PaymentMethod } from '../../state/billing.js';
import { useOrg } from '../../state/org-context.js';
import { confirmAction } from '../../ui/confirm.js';
import { Badge, Button, Card, createAction, EmptyState } from '../../ui/components.js';
import { toast } from '../../ui/toast.js';
import { goToCheckout } from './common.js';

const TYPE_NAMES: Record<string, string> = { card: 'Card', us_bank_account: 'US bank account', sepa_debit: 'SEPA Direct Debit' };

function brandName(pm: PaymentMethod): string {
  if (pm.type === 'card') return pm.brand ? pm.brand[0]!.toUpperCase() + pm.brand.slice(1) : 'Card';
  return pm.brand || TYPE_NAMES[pm.type] || pm.type;
}

export function PaymentMethodsCard(props: { overview: BillingOverview }) {
  const ctx = useOrg();
  const canManage = () => ctx.can('billing.manage');
  const [adding, add] = createAction(async () => {
    const { checkoutUrl } = await api.billing.paymentMethods.add.mutate({ orgId: ctx.orgId() });
    goToCheckout(checkoutUrl);
    await new Promise((resolve) => setTimeout(resolve, 8000));
  });
  return (
    <Card
      title="Payment methods"
      id="payment-methods"
      description="Cards and bank accounts saved for auto top-up. Buying credits saves the one you pay with."
      actions={
        <Show when={canManage()}>
          <Button size="sm" loading={adding()} onClick={() => void add()}>
            Add payment method
          </Button>
        </Show>
      }
    >
      <Show
        when={props.overview.paymentMethods.length > 0}
        fallback={
          <EmptyState title="No payment methods yet">
            <p class="small">{canManage() ? 'Add one, or buy credits: the method you pay with is saved.' : 'An owner adds them when buying credits.'}</p>
          </EmptyState>
        }
      >
        <ul class="pm-list" data-testid="payment-methods">
          <For each={props.overview.paymentMethods}>
            {(pm) => <PaymentMethodRow pm={pm} canManage={canManage()} autoTopUpOn={props.overview.autoTopUp.enabled} />}
          </For>
        </ul>
      </Show>
      <Show when={!canManage()}>
        <p class="role-note">Only owners can add, remove or change payment methods.</p>
      </Show>
    </Card>
  );
}

function PaymentMethodRow(props: { pm: PaymentMethod; canManage: boolean; autoTopUpOn: boolean }) {
  const ctx = useOrg();
  const name = () => `${brandName(props.pm)} ending ${props.pm.last4}`;
  const [settingDefault, setDefault] = createAction(async () => {
    await api.billing.paymentMethods.setDefault.mutate({ orgId: ctx.orgId(), paymentMethodId: props.pm.id });
    toast.success(`${name()} is now the default.`);
    void ctx.billing.refresh();
  });
  const [removing, remove] = createAction(async () => {
    const stopsAutoTopUp = props.pm.isDefault && props.autoTopUpOn;
    const ok = await confirmAction({
      title: `Remove ${name()}?`,
      body: stopsAutoTopUp
        ? 'It is the default payment method: auto top-up cannot charge anything until you choose another default.'
        : 'It is removed from this organization. Past payments made with it are not affected.',
      confirmLabel: 'Remove payment method',
      danger: true,
    });
    if (!ok) return;
    await api.billing.paymentMethods.remove.mutate({ orgId: ctx.orgId(), paymentMethodId: props.pm.id });
    toast.success(`${name()} removed.`);
    void ctx.billing.refresh();
  });
  return (
    <li class="pm-row" data-testid={`payment-method-${props.pm.last4}`}>
      <span class="pm-icon" aria-hidden="true">
        {props.pm.type === 'card' ? '▭' : '⌂'}
      </span>
      <div class="pm-main">
        <div class="cell-title">
          {brandName(props.pm)} •••• {props.pm.last4} <Show when={props.pm.isDefault}><Badge tone="accent">Default</Badge></Show>
        </div>
        <div class="muted small">
          {TYPE_NAMES[props.pm.type] ?? props.pm.type}
          <Show when={props.pm.expiry}> · Expires {props.pm.expiry}</Show>
        </div>
      </div>
      <Show when={props.canManage}>
        <div class="pm-actions">
          <Show when={!props.pm.isDefault}>
            <Button size="sm" variant="ghost" loading={settingDefault()} onClick={() => void setDefault()}>
              Make default<span class="sr-only"> {name()}</span>
            </Button>
          </Show>
          <Button size="sm" variant="ghost" class="text-danger" loading={removing()} onClick={() => void remove()}>
            Remove<span class="sr-only"> {name()}</span>
          </Button>
        </div>
      </Show>
    </li>
  );
}
