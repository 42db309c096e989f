/**
 * The organization's billing overview (plan, subscription, auto top-up, payment methods), shared by
 * the billing pages and the layout's banners so both show the same facts. Loaded only for roles that
 * may view billing; refreshed on the live events that change it. The balance itself is not read from
 * here: the organization's `credits` is patched live by the layout on `credits.changed`.
 */
import { createEffect, createMemo, on } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import type { LiveEvent } from '../../../shared/events.js';
import { decimalToNanos, NANOS_PER_DOLLAR } from '../../../shared/money.js';
import { api, type RouterOutputs } from '../api.js';

export type BillingOverview = RouterOutputs['billing']['overview'];
export type PaymentMethod = BillingOverview['paymentMethods'][number];

/** Below this balance every member sees the low-balance banner. */
export const LOW_BALANCE_NANOS = 5n * NANOS_PER_DOLLAR;

export function isLowBalance(credits: string | undefined): boolean {
  if (credits === undefined) return false;
  try {
    return decimalToNanos(credits) < LOW_BALANCE_NANOS;
  } catch {
    return false;
  }
}

const REFRESH_ON: ReadonlySet<LiveEvent['type']> = new Set(['billing.updated', 'auto_top_up.failed', 'organization.updated']);

export interface BillingStore {
  overview(): BillingOverview | null;
  error(): unknown;
  /** Loads (again); concurrent calls share one request, and a call during a request runs once more after it. */
  refresh(): Promise<void>;
}

export function createBillingStore(deps: {
  orgId: () => string;
  /** The organization is loaded and my role may view billing. */
  enabled: () => boolean;
  onEvent: (handler: (event: LiveEvent) => void) => void;
}): BillingStore {
  const [state, setState] = createStore({ overview: null as BillingOverview | null, error: null as unknown, orgId: '' });
  // A memo, so patches of the organization (every balance change) do not count as a change here.
  const enabled = createMemo(deps.enabled);
  let inflight: Promise<void> | null = null;
  let again = false;

  const fetchOnce = async () => {
    const orgId = deps.orgId();
    if (!enabled()) return;
    try {
      const overview = await api.billing.overview.query({ orgId });
      if (orgId !== deps.orgId() || !enabled()) return;
      setState('overview', reconcile(overview));
      setState({ error: null, orgId });
    } catch (err) {
      if (orgId === deps.orgId()) setState('error', err);
    }
  };

  const refresh = (): Promise<void> => {
    if (inflight) {
      again = true;
      return inflight;
    }
    inflight = (async () => {
      do {
        again = false;
        await fetchOnce();
      } while (again);
    })().finally(() => {
      inflight = null;
    });
    return inflight;
  };

  // A new organization (or a role that no longer sees billing) starts from nothing.
  createEffect(
    on([deps.orgId, enabled], ([orgId, allowed]) => {
      if (state.orgId !== orgId || !allowed) setState({ overview: null, error: null, orgId: '' });
      if (allowed) void refresh();
    }),
  );

  deps.onEvent((event) => {
    if (!REFRESH_ON.has(event.type) || !enabled()) return;
    // A rename is no billing news; a plan change is.
    if (event.type === 'organization.updated' && event.plan === state.overview?.plan) return;
    void refresh();
  });

  return {
    overview: () => (state.orgId === deps.orgId() ? state.overview : null),
    error: () => state.error,
    refresh,
  };
}
