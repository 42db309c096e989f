/**
 * Plan limits shown before a form is sent: the same refusal the server would give (from
 * shared/plans.ts), so a form at its limit is disabled with the reason beside it.
 */
import { A } from '@solidjs/router';
import { createEffect, createSignal, on, Show } from 'solid-js';
import { api } from '../api.js';
import { useOrg } from '../state/org-context.js';

export type LimitsOf = { reason: string | null; used: number; limit: number | null };

/** The organization's project limit, reloaded when projects or the plan change. */
export function createProjectLimit() {
  const ctx = useOrg();
  const [limits, setLimits] = createSignal<LimitsOf | null>(null);
  const load = () =>
    api.organization.limits
      .query({ orgId: ctx.orgId() })
      .then((l) => setLimits(l.projects))
      .catch(() => setLimits(null)); // the server still refuses; the form just is not disabled early
  createEffect(on([() => ctx.orgId(), () => ctx.org()?.plan], () => void load()));
  ctx.onEvent((e) => {
    if (e.type === 'project.created' || e.type === 'project.deleted') void load();
  });
  return { limits, reason: () => limits()?.reason ?? null, reload: load };
}

/** The reason a form is disabled, with the way up (Billing) for those who may change the plan. */
export function LimitNote(props: { reason: string | null; billingHref?: string | null; testId?: string }) {
  return (
    <Show when={props.reason}>
      <div class="callout callout-warning limit-note" role="status" data-testid={props.testId ?? 'limit-note'}>
        <div class="callout-body">
          <p class="callout-title">Limit reached</p>
          <p>{sentence(props.reason!)}</p>
          <Show when={props.billingHref && /upgrade/i.test(props.reason!)}>
            <p>
              <A href={props.billingHref!}>See plans on the Billing page</A>
            </p>
          </Show>
        </div>
      </div>
    </Show>
  );
}

/** "the Free plan allows…" as a sentence. */
export function sentence(text: string): string {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}
