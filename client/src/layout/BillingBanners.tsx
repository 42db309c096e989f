/**
 * Banners across every page of an organization: a low balance (everyone: requests stop at $0),
 * budget alerts as they arrive, and auto top-up trouble (roles that view billing). Each can be
 * dismissed for the rest of the browser session; the low-balance one comes back after the balance
 * has recovered and fallen again.
 */
import { A, useLocation } from '@solidjs/router';
import { createEffect, createSignal, For, on, Show, type JSX } from 'solid-js';
import type { OrgEvent } from '../../../shared/events.js';
import { decimalToNanos } from '../../../shared/money.js';
import { formatMoney } from '../ui/format.js';
import { isLowBalance } from '../state/billing.js';
import { useOrg } from '../state/org-context.js';

type BudgetAlertEvent = Extract<OrgEvent, { type: 'budget.alert' }>;
type Kind = BudgetAlertEvent['kind'];

const key = (orgId: string, name: string) => `gateway.banner.${orgId}.${name}`;

function readJson<T>(k: string, fallback: T): T {
  try {
    const raw = sessionStorage.getItem(k);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

function writeJson(k: string, value: unknown) {
  try {
    if (value === null) sessionStorage.removeItem(k);
    else sessionStorage.setItem(k, JSON.stringify(value));
  } catch {
    // Private mode or full storage: the banner just comes back on reload.
  }
}

export function budgetAlertText(e: { kind: Kind; threshold: string; value: string }): string {
  return e.kind === 'balance_below'
    ? `The balance is ${formatMoney(e.value)}, below your alert of ${formatMoney(e.threshold)}.`
    : `${formatMoney(e.value)} spent this month, above your alert of ${formatMoney(e.threshold)}.`;
}

export function BillingBanners() {
  const ctx = useOrg();
  const location = useLocation();
  const orgId = ctx.orgId();
  const billingPath = `/org/${orgId}/billing`;
  const onBillingPage = () => location.pathname === billingPath;

  const [lowDismissed, setLowDismissed] = createSignal(readJson<boolean>(key(orgId, 'low-balance'), false));
  const [budget, setBudget] = createSignal(readJson<Partial<Record<Kind, BudgetAlertEvent>>>(key(orgId, 'budget-alerts'), {}));
  const [dismissedReason, setDismissedReason] = createSignal(readJson<string | null>(key(orgId, 'auto-top-up'), null));

  const low = () => isLowBalance(ctx.org()?.credits);
  const empty = () => {
    const credits = ctx.org()?.credits;
    return credits !== undefined && (credits.startsWith('-') || /^0\.0+$/.test(credits));
  };
  // Re-arm: once the balance is healthy again, the next fall shows the banner again.
  createEffect(
    on(low, (isLow) => {
      if (!isLow && lowDismissed()) {
        setLowDismissed(false);
        writeJson(key(orgId, 'low-balance'), null);
      }
    }),
  );

  ctx.onEvent((event) => {
    if (event.type !== 'budget.alert') return;
    const next = { ...budget(), [event.kind]: { type: event.type, kind: event.kind, threshold: event.threshold, value: event.value } };
    setBudget(next);
    writeJson(key(orgId, 'budget-alerts'), next);
  });

  const dismissBudget = (kind: Kind) => {
    const next = { ...budget() };
    delete next[kind];
    setBudget(next);
    writeJson(key(orgId, 'budget-alerts'), next);
  };

  const overview = () => ctx.billing.overview();
  const autoTopUpOff = () => {
    const o = overview();
    return o && !o.autoTopUp.enabled && o.autoTopUp.disabledReason ? o.autoTopUp.disabledReason : null;
  };
  /** The last top-up waits for the card holder, and the balance still needs it. */
  const needsConfirmation = () => {
    const o = overview();
    const credits = ctx.org()?.credits;
    if (!o || !credits || !o.autoTopUp.enabled || o.autoTopUp.lastAttempt?.status !== 'requires_action') return false;
    try {
      return decimalToNanos(credits) < decimalToNanos(o.autoTopUp.threshold);
    } catch {
      return false;
    }
  };
  const [confirmDismissed, setConfirmDismissed] = createSignal(readJson<boolean>(key(orgId, 'auto-top-up-confirm'), false));

  const budgetAlerts = () => (ctx.can('billing.view') ? (Object.values(budget()).filter(Boolean) as BudgetAlertEvent[]) : []);
  const showLow = () => low() && !lowDismissed() && !budget().balance_below;
  const showAutoTopUpOff = () => ctx.can('billing.view') && !!autoTopUpOff() && dismissedReason() !== autoTopUpOff();
  const showConfirm = () => ctx.can('billing.view') && needsConfirmation() && !confirmDismissed();
  const any = () => showLow() || budgetAlerts().length > 0 || showAutoTopUpOff() || showConfirm();

  /** What a role can do about money: owners add credits, admins look, developers ask. */
  const creditsAction = (): JSX.Element => {
    if (ctx.can('billing.manage')) {
      return (
        <Show when={!onBillingPage()}>
          <A href={`${billingPath}#add-credits`} class="btn btn-secondary btn-sm">
            Add credits
          </A>
        </Show>
      );
    }
    if (ctx.can('billing.view')) {
      return (
        <>
          <span class="banner-aside">Only owners can add credits.</span>
          <Show when={!onBillingPage()}>
            <A href={billingPath} class="btn btn-secondary btn-sm">
              View billing
            </A>
          </Show>
        </>
      );
    }
    return <span class="banner-aside">Ask an owner of this organization to add credits.</span>;
  };

  return (
    <Show when={any()}>
      <div class="org-banners" role="region" aria-label="Billing notices" aria-live="polite">
        <Show when={showLow()}>
          <Banner
            tone="warning"
            testId="low-balance-banner"
            title={empty() ? 'No credits' : 'Low credit balance'}
            onDismiss={() => {
              setLowDismissed(true);
              writeJson(key(orgId, 'low-balance'), true);
            }}
            actions={creditsAction()}
          >
            <Show
              when={empty()}
              fallback={<>{formatMoney(ctx.org()?.credits ?? '0')} left. Requests billed to credits are refused once it reaches $0.</>}
            >
              The balance is {formatMoney(ctx.org()?.credits ?? '0')}: requests billed to credits are refused until credits are added. Projects on
              provider keys are not affected.
            </Show>
          </Banner>
        </Show>
        <For each={budgetAlerts()}>
          {(alert) => (
            <Banner
              tone="warning"
              testId={`budget-alert-banner-${alert.kind}`}
              title="Budget alert"
              onDismiss={() => dismissBudget(alert.kind)}
              actions={
                <Show when={!onBillingPage()}>
                  <A href={`${billingPath}#budget-alerts`} class="btn btn-secondary btn-sm">
                    Review alerts
                  </A>
                </Show>
              }
            >
              {budgetAlertText(alert)}
            </Banner>
          )}
        </For>
        <Show when={showAutoTopUpOff()}>
          <Banner
            tone="danger"
            testId="auto-top-up-banner"
            title="Auto top-up is off"
            onDismiss={() => {
              setDismissedReason(autoTopUpOff());
              writeJson(key(orgId, 'auto-top-up'), autoTopUpOff());
            }}
            actions={
              <Show when={!onBillingPage()}>
                <A href={`${billingPath}#auto-top-up`} class="btn btn-secondary btn-sm">
                  Review auto top-up
                </A>
              </Show>
            }
          >
            {autoTopUpOff()}
          </Banner>
        </Show>
        <Show when={showConfirm()}>
          <Banner
            tone="warning"
            testId="auto-top-up-confirm-banner"
            title="Auto top-up needs you"
            actions={creditsAction()}
            onDismiss={() => {
              setConfirmDismissed(true);
              writeJson(key(orgId, 'auto-top-up-confirm'), true);
            }}
          >
            The bank asked for confirmation of the last auto top-up payment, so it did not go through. Buying credits by hand pays now and confirms the payment method.
          </Banner>
        </Show>
      </div>
    </Show>
  );
}

function Banner(props: {
  tone: 'warning' | 'danger' | 'info';
  title: string;
  testId: string;
  children: JSX.Element;
  actions?: JSX.Element;
  onDismiss?: () => void;
}) {
  return (
    <div class={`banner banner-${props.tone}`} data-testid={props.testId}>
      <p class="banner-text">
        <strong>{props.title}.</strong> {props.children}
      </p>
      <div class="banner-actions">
        {props.actions}
        <Show when={props.onDismiss}>
          <button type="button" class="btn btn-ghost btn-sm" onClick={() => props.onDismiss?.()} aria-label={`Dismiss: ${props.title}`}>
            Dismiss
          </button>
        </Show>
      </div>
    </div>
  );
}
