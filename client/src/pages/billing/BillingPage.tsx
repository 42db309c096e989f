/**
 * Billing: the live balance, buying credits (Checkout), auto top-up, payment methods, the plan
 * (switch monthly/yearly, resume a cancellation), invoices and budget alerts. Owners act; admins see everything read-only; other roles are told they have no access.
 */
import { useLocation } from '@solidjs/router';
import { A } from '@solidjs/router';
import { createEffect, createSignal, For, on, Show } from 'solid-js';
import { formatMoney } from '../../ui/format.js';
import { purchaseCreditsInput } from '../../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf } from '../../api.js';
import { useOrg } from '../../state/org-context.js';
import { Button, Card, createAction, ErrorState, Loading } from '../../ui/components.js';
import { validate } from '../../ui/forms.js';
import { AutoTopUpCard } from './AutoTopUp.js';
import { BudgetAlertsCard } from './BudgetAlerts.js';
import { CheckoutReturnNote, rememberCheckout } from './checkout-return.js';
import { BillingHeader, goToCheckout, MoneyField, NoBillingAccess } from './common.js';
import { PaymentMethodsCard } from './PaymentMethods.js';
import { PlanCard } from './Plan.js';
import { InvoicesCard } from './Invoices.js';

const PRESETS = ['10', '25', '50', '100'];

export function BillingPage() {
  const ctx = useOrg();
  return (
    <Show when={ctx.can('billing.view')} fallback={<NoBillingAccess title="Billing" />}>
      <BillingContent />
    </Show>
  );
}

function BillingContent() {
  const ctx = useOrg();
  const location = useLocation();
  const overview = () => ctx.billing.overview();
  const [amount, setAmount] = createSignal('25');

  /** "Add credits" from elsewhere on the page (auto top-up needs confirming): prefill and focus the form. */
  const startPurchase = (dollars?: string) => {
    if (dollars) setAmount(dollars);
    const card = document.getElementById('add-credits');
    card?.scrollIntoView({ behavior: 'smooth', block: 'center' });
    card?.querySelector<HTMLInputElement>('input')?.focus({ preventScroll: true });
  };

  // Links from the banners point at a section (#auto-top-up): scroll there once it is rendered.
  createEffect(
    on([() => location.hash, () => !!overview()], ([hash, ready]) => {
      if (!hash || !ready) return;
      queueMicrotask(() => document.getElementById(hash.slice(1))?.scrollIntoView({ block: 'start' }));
    }),
  );

  return (
    <div class="page">
      <BillingHeader title="Billing" description={`Credits, payment methods, plan and alerts of ${ctx.org()?.name}.`} />
      <CheckoutReturnNote />
      <div class="grid grid-2">
        <BalanceCard />
        <AddCreditsCard amount={amount()} setAmount={setAmount} />
      </div>
      <Show
        when={overview()}
        fallback={
          <Show when={ctx.billing.error()} fallback={<Loading label="Loading billing…" />}>
            <ErrorState error={ctx.billing.error()} retry={() => void ctx.billing.refresh()} />
          </Show>
        }
      >
        {(o) => (
          <>
            <div class="grid grid-2">
              <AutoTopUpCard overview={o()} onBuyCredits={startPurchase} />
              <PaymentMethodsCard overview={o()} />
            </div>
            <PlanCard overview={o()} />
            <InvoicesCard />
          </>
        )}
      </Show>
      <BudgetAlertsCard />
    </div>
  );
}

function BalanceCard() {
  const ctx = useOrg();
  const o = () => ctx.billing.overview();
  return (
    <Card title="Balance" class="balance-card">
      <p class="balance" data-testid="billing-credits" aria-live="polite">
        {formatMoney(ctx.org()?.credits ?? '0')}
      </p>
      <p class="muted">1 credit = $1. Requests routed on credits draw from this balance; unused credits never expire.</p>
      <Show when={o()}>
        {(ov) => (
          <p class="balance-detail">
            <Show
              when={ov().autoTopUp.enabled}
              fallback={
                <>
                  Auto top-up is <strong>off</strong>.
                </>
              }
            >
              Auto top-up adds <strong>{formatMoney(ov().autoTopUp.amount)}</strong> when the balance falls below{' '}
              <strong>{formatMoney(ov().autoTopUp.threshold)}</strong>.
            </Show>
          </p>
        )}
      </Show>
      <Show when={o()?.testMode}>
        <p class="field-hint">Test mode: payments go to the local test-payment provider; no real money moves.</p>
      </Show>
      <p class="card-link">
        <A href={`/org/${ctx.orgId()}/billing/transactions`}>View transactions</A>
      </p>
    </Card>
  );
}

function AddCreditsCard(props: { amount: string; setAmount: (v: string) => void }) {
  const ctx = useOrg();
  const [error, setError] = createSignal<string | undefined>();
  const [pending, purchase] = createAction(
    async () => {
      const orgId = ctx.orgId();
      const checked = validate(purchaseCreditsInput, { orgId, amount: props.amount });
      if (!checked.ok) return setError(checked.errors.amount ?? Object.values(checked.errors)[0]);
      setError(undefined);
      // The newest ledger entry before leaving: on return, a purchase above it is this one.
      const [latest, session] = await Promise.all([
        api.billing.transactions.query({ orgId, limit: 1 }),
        api.billing.purchaseCredits.mutate({ orgId, amount: props.amount }),
      ]);
      rememberCheckout(orgId, latest.items[0]?.id ?? '0');
      goToCheckout(session.checkoutUrl);
      // Stay busy while the browser leaves, so a second click does not start a second checkout.
      await new Promise((resolve) => setTimeout(resolve, 8000));
    },
    { onError: (err) => setError(fieldErrorsOf(err).amount ?? errorMessage(err)) },
  );
  return (
    <Card title="Add credits" id="add-credits" description="Pay by card, US bank account or SEPA debit. Credits arrive as soon as the payment succeeds.">
      <Show
        when={ctx.can('billing.manage')}
        fallback={<p class="role-note">Only owners can add credits. You can see the balance and every transaction.</p>}
      >
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void purchase();
          }}
          novalidate
        >
          <div class="presets" role="group" aria-label="Quick amounts">
            <For each={PRESETS}>
              {(p) => (
                <button
                  type="button"
                  class="btn btn-secondary preset"
                  classList={{ selected: props.amount === p }}
                  aria-pressed={props.amount === p}
                  onClick={() => {
                    props.setAmount(p);
                    setError(undefined);
                  }}
                >
                  ${p}
                </button>
              )}
            </For>
          </div>
          <MoneyField
            label="Amount"
            value={props.amount}
            onInput={(v) => {
              props.setAmount(v);
              setError(undefined);
            }}
            error={error()}
            hint="At least $10. You confirm the payment on the next page."
          />
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={pending()}>
              Add credits
            </Button>
          </div>
        </form>
      </Show>
    </Card>
  );
}
