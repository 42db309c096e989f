/** Pieces shared by the billing pages: the section tabs, the no-access state, money and type labels. */
import { A } from '@solidjs/router';
import type { JSX } from 'solid-js';
import { Show } from 'solid-js';
import type { RouterOutputs } from '../../api.js';
import { useOrg } from '../../state/org-context.js';
import { Badge, Field, PageHeader } from '../../ui/components.js';
import { formatMoney } from '../../ui/format.js';

export type Transaction = RouterOutputs['billing']['transactions']['items'][number];
export type LedgerType = Transaction['type'];

export const TYPE_LABELS: Record<LedgerType, string> = {
  purchase: 'Purchase',
  usage: 'Usage',
  usage_credit: 'Usage credit',
  refund: 'Refund',
  auto_topup: 'Auto top-up',
  adjustment: 'Adjustment',
  plan_charge: 'Pro plan charge',
};

export const TYPE_TONES: Record<LedgerType, 'neutral' | 'accent' | 'success' | 'warning' | 'danger'> = {
  purchase: 'success',
  usage: 'neutral',
  usage_credit: 'accent',
  refund: 'warning',
  auto_topup: 'success',
  adjustment: 'accent',
  plan_charge: 'neutral',
};

/** "+$25.00", "−$1.20", "−$0.00423": the dashboard's one money rule (ui/format.ts). */
export const formatAmount = formatMoney;

/** "10.00" -> "10" for an input a person edits; keeps cents when there are any. */
export function dollarsForInput(decimal: string): string {
  return decimal.replace(/\.0+$/, '').replace(/(\.\d)0$/, '$1');
}

/** Leaves the app for a Stripe (or test-payment) checkout page. */
export function goToCheckout(url: string) {
  window.location.assign(url);
}

export function BillingHeader(props: { title: string; description: JSX.Element }) {
  const ctx = useOrg();
  const base = () => `/org/${ctx.orgId()}/billing`;
  return (
    <>
      <PageHeader
        title={props.title}
        description={props.description}
        actions={
          <Show when={ctx.billing.overview()?.testMode}>
            <span title="Payments go to the local test-payment provider: no real money moves.">
              <Badge tone="warning">Test mode</Badge>
            </span>
          </Show>
        }
      />
      <nav class="tabs" aria-label="Billing sections">
        <A href={base()} end class="tab" activeClass="active">
          Overview
        </A>
        <A href={`${base()}/transactions`} class="tab" activeClass="active">
          Transactions
        </A>
      </nav>
    </>
  );
}

/** What developers (and anyone without billing.view) see on a billing URL. */
export function NoBillingAccess(props: { title: string }) {
  const ctx = useOrg();
  return (
    <div class="page">
      <PageHeader title={props.title} />
      <div class="role-note" role="note" data-testid="billing-no-access">
        <p class="cell-title">You don't have access to billing</p>
        <p class="card-pad">
          Billing and transactions of {ctx.org()?.name} are visible to owners and admins. Ask one of them if you need an invoice or a
          change to the plan.
        </p>
      </div>
    </div>
  );
}

/** A dollar amount input with a "$" in front; validation happens with the shared zod schemas. */
export function MoneyField(props: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | undefined;
  hint?: JSX.Element;
  disabled?: boolean;
  placeholder?: string;
}) {
  return (
    <Field label={props.label} error={props.error} hint={props.hint}>
      {(id, describedBy) => (
        <div class="money-input" classList={{ disabled: props.disabled }}>
          <span class="money-prefix" aria-hidden="true">
            $
          </span>
          <input
            id={id}
            class="input"
            inputmode="decimal"
            autocomplete="off"
            value={props.value}
            placeholder={props.placeholder}
            disabled={props.disabled}
            onInput={(e) => props.onInput(e.currentTarget.value)}
            aria-invalid={props.error ? 'true' : undefined}
            aria-describedby={describedBy}
          />
        </div>
      )}
    </Field>
  );
}
