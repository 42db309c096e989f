/**
 * Back from checkout (?checkout=success|payment-method-added|subscribed|canceled). The redirect
 * proves nothing: credits arrive by the webhook, a moment later. So the note says "a moment",
 * then follows the ledger: before leaving, the purchase form remembers the newest ledger id; a
 * purchase above it means the credits are in (also when the webhook beat this page's load).
 */
import { useSearchParams } from '@solidjs/router';
import { createEffect, createSignal, Match, on, onCleanup, onMount, Show, Switch, untrack } from 'solid-js';
import { formatMoney } from '../../ui/format.js';
import { api } from '../../api.js';
import { useOrg } from '../../state/org-context.js';
import { formatAmount } from './common.js';

interface PendingCheckout {
  afterId: string;
  at: number;
}

const key = (orgId: string) => `gateway.checkout.${orgId}`;
const SLOW_MS = 20_000;
const RECENT_MS = 5 * 60_000;

/** Called just before leaving for a credits checkout. */
export function rememberCheckout(orgId: string, afterId: string) {
  try {
    sessionStorage.setItem(key(orgId), JSON.stringify({ afterId, at: Date.now() } satisfies PendingCheckout));
  } catch {
    // Without storage the note falls back to watching for the next change.
  }
}

function takeCheckout(orgId: string): PendingCheckout | null {
  try {
    const raw = sessionStorage.getItem(key(orgId));
    sessionStorage.removeItem(key(orgId));
    const p = raw ? (JSON.parse(raw) as PendingCheckout) : null;
    return p && Date.now() - p.at < 3600_000 && /^\d+$/.test(p.afterId) ? p : null;
  } catch {
    return null;
  }
}

type CreditsState = { kind: 'waiting' } | { kind: 'slow' } | { kind: 'processing' } | { kind: 'done'; amount: string } | { kind: 'failed'; description: string };

export function CheckoutReturnNote() {
  const ctx = useOrg();
  const [params, setParams] = useSearchParams();
  const raw = untrack(() => params.checkout);
  const outcome = (['success', 'payment-method-added', 'subscribed', 'canceled'] as const).find((o) => o === raw) ?? null;
  const [visible, setVisible] = createSignal(!!outcome);
  // The note is for this arrival only: a reload or a shared link should not say it again.
  onMount(() => {
    if (raw !== undefined) setParams({ checkout: undefined }, { replace: true });
  });

  const orgId = ctx.orgId();
  const [credits, setCredits] = createSignal<CreditsState>({ kind: 'waiting' });
  let baseline: bigint | null = null;

  const check = async () => {
    if (outcome !== 'success') return;
    const page = await api.billing.transactions.query({ orgId, type: 'purchase', limit: 10 }).catch(() => null);
    if (!page) return;
    if (baseline === null) {
      // No record of leaving from this tab (checkout finished elsewhere): a purchase of the last few
      // minutes is taken as this one; otherwise anything newer than what is there now counts.
      const recent = page.items.find((t) => t.status === 'completed' && Date.now() - new Date(t.createdAt).getTime() < RECENT_MS);
      baseline = page.items.reduce((max, t) => (BigInt(t.id) > max ? BigInt(t.id) : max), 0n);
      if (recent) setCredits({ kind: 'done', amount: recent.amount });
      return;
    }
    const mine = page.items.filter((t) => BigInt(t.id) > baseline!);
    const done = mine.find((t) => t.status === 'completed');
    const failed = mine.find((t) => t.status === 'failed');
    if (done) setCredits({ kind: 'done', amount: done.amount });
    else if (failed) setCredits({ kind: 'failed', description: failed.description });
  };

  if (outcome === 'success') {
    const pending = takeCheckout(orgId);
    if (pending) baseline = BigInt(pending.afterId);
    onMount(() => void check());
    const slow = setTimeout(() => credits().kind === 'waiting' && setCredits({ kind: 'slow' }), SLOW_MS);
    onCleanup(() => clearTimeout(slow));
    ctx.onEvent((e) => {
      const open = credits().kind !== 'done' && credits().kind !== 'failed';
      if (!open) return;
      if (e.type === 'billing.updated' && e.reason === 'payment_processing') setCredits({ kind: 'processing' });
      if (e.type === 'credits.changed' || (e.type === 'billing.updated' && e.reason === 'payment_failed')) void check();
    });
  }

  // Subscribed: the plan flips to Pro when the subscription's webhook lands.
  // Either source may learn it first (the organization's event, or the billing overview the Plan
  // card shows); the note must agree with the Plan card.
  const isPro = () => ctx.org()?.plan === 'pro' || ctx.billing.overview()?.plan === 'pro';
  const [subscribedSeen, setSubscribedSeen] = createSignal(isPro());
  createEffect(on(isPro, (pro) => pro && setSubscribedSeen(true), { defer: true }));

  const tone = () => {
    if (outcome === 'canceled') return 'neutral';
    if (outcome === 'success') {
      const k = credits().kind;
      return k === 'done' ? 'success' : k === 'failed' ? 'danger' : 'info';
    }
    if (outcome === 'subscribed') return subscribedSeen() ? 'success' : 'info';
    return 'success';
  };

  return (
    <Show when={visible() && outcome}>
      <div class={`callout callout-${tone()}`} role="status" data-testid="checkout-note">
        <div class="callout-body">
          <Switch>
            <Match when={outcome === 'success'}>
              <Switch>
                <Match when={credits().kind === 'done'}>
                  <p class="callout-title">Credits added</p>
                  <p>
                    {formatAmount((credits() as { amount: string }).amount, { signed: true })} is in your balance, which is now{' '}
                    {formatMoney(ctx.org()?.credits ?? '0')}.
                  </p>
                </Match>
                <Match when={credits().kind === 'failed'}>
                  <p class="callout-title">The payment did not go through</p>
                  <p>{(credits() as { description: string }).description}. Nothing was charged; try another payment method.</p>
                </Match>
                <Match when={credits().kind === 'processing'}>
                  <p class="callout-title">Payment processing</p>
                  <p>Bank debits take a moment to settle. Credits appear here when it does; you can leave this page.</p>
                </Match>
                <Match when={credits().kind === 'slow'}>
                  <p class="callout-title">Payment received — credits appear in a moment</p>
                  <p>This is taking longer than usual. The purchase shows under Transactions as soon as the payment provider confirms it.</p>
                </Match>
                <Match when={true}>
                  <p class="callout-title">Payment received — credits appear in a moment</p>
                  <p>Your balance updates here on its own; no need to reload.</p>
                </Match>
              </Switch>
            </Match>
            <Match when={outcome === 'payment-method-added'}>
              <p class="callout-title">Payment method saved</p>
              <p>It appears under Payment methods in a moment. The first one becomes the default for auto top-up.</p>
            </Match>
            <Match when={outcome === 'subscribed'}>
              <p class="callout-title">{subscribedSeen() ? 'Welcome to Pro' : 'Subscription started — your plan changes to Pro in a moment'}</p>
              <p>Pro limits and retention apply to this organization as soon as the plan shows Pro.</p>
            </Match>
            <Match when={outcome === 'canceled'}>
              <p class="callout-title">Checkout canceled</p>
              <p>Nothing was charged.</p>
            </Match>
          </Switch>
        </div>
        <button type="button" class="btn btn-ghost btn-sm" onClick={() => setVisible(false)} aria-label="Dismiss this note">
          Dismiss
        </button>
      </div>
    </Show>
  );
}
