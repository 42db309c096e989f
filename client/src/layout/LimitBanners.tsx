/**
 * Spend-limit notices across every page of an organization, from live `limit.alert` events (50, 80
 * and 100% of an API key's spend limit, a member's budget, the daily or monthly cap). Owners and
 * admins see every one; a developer sees the organization's caps and the alerts of their own keys
 * and budget. One notice per limit (a higher threshold replaces a lower one), dismissable, kept for
 * the browser session and dropped once the limit's period has reset.
 */
import { A } from '@solidjs/router';
import { createSignal, For, Show } from 'solid-js';
import type { LimitAlertEvent } from '../../../shared/events.js';
import { formatMoney } from '../ui/format.js';
import { resetsIn } from '../ui/limits.js';
import { useOrg } from '../state/org-context.js';
import { me } from '../state/session.js';

type Alert = Omit<LimitAlertEvent, 'type'>;

const storageKey = (orgId: string) => `gateway.banner.${orgId}.limit-alerts`;
const alertKey = (a: Pick<Alert, 'scope' | 'subjectId'>) => `${a.scope}:${a.subjectId}`;

function read(orgId: string): Record<string, Alert> {
  try {
    const raw = sessionStorage.getItem(storageKey(orgId));
    const all = raw ? (JSON.parse(raw) as Record<string, Alert>) : {};
    // A notice of a period that has reset since is news no more.
    return Object.fromEntries(Object.entries(all).filter(([, a]) => !a.resetsAt || new Date(a.resetsAt).getTime() > Date.now()));
  } catch {
    return {};
  }
}

function write(orgId: string, alerts: Record<string, Alert>) {
  try {
    if (Object.keys(alerts).length === 0) sessionStorage.removeItem(storageKey(orgId));
    else sessionStorage.setItem(storageKey(orgId), JSON.stringify(alerts));
  } catch {
    // Private mode or full storage: the notice just does not survive a reload.
  }
}

const WHAT: Record<Alert['scope'], string> = { apiKey: 'spend limit', member: 'budget', dailyCap: 'daily spend cap', monthlyCap: 'monthly spend cap' };

/** "API key “ci”", "Ada's budget", "The daily spend cap". */
function subjectText(a: Alert, mine: boolean): string {
  if (a.scope === 'apiKey') return `API key “${a.name}”${mine ? ' (yours)' : ''}`;
  if (a.scope === 'member') return mine ? 'Your budget' : `${a.name}'s budget`;
  return `The organization's ${WHAT[a.scope]}`;
}

export function limitAlertText(a: Alert, mine = false): string {
  const subject = subjectText(a, mine);
  const of = a.scope === 'apiKey' ? ` of its ${WHAT.apiKey}` : '';
  const reset = a.resetsAt ? ` It ${resetsIn(a.resetsAt) ?? 'resets soon'}.` : ' It is a lifetime limit: it does not reset.';
  if (a.threshold === 100) {
    return `${subject} has reached ${a.scope === 'apiKey' ? 'its spend limit' : 'its limit'} of ${formatMoney(a.limit)}: calls that would spend more are refused.${reset}`;
  }
  return `${subject} has used ${a.threshold}%${of} (${formatMoney(a.spent)} of ${formatMoney(a.limit)}).${reset}`;
}

export function LimitBanners() {
  const ctx = useOrg();
  const orgId = ctx.orgId();
  const [alerts, setAlerts] = createSignal(read(orgId));

  ctx.onEvent((event) => {
    if (event.type !== 'limit.alert') return;
    const { type: _type, orgId: _org, actorId: _actor, at: _at, ...alert } = event;
    const next = { ...alerts(), [alertKey(alert)]: alert };
    setAlerts(next);
    write(orgId, next);
  });

  const dismiss = (a: Alert) => {
    const next = { ...alerts() };
    delete next[alertKey(a)];
    setAlerts(next);
    write(orgId, next);
  };

  const mine = (a: Alert) => !!a.userId && a.userId === me()?.id;
  const visible = () =>
    Object.values(alerts()).filter((a) => ctx.can('member.manage') || a.scope === 'dailyCap' || a.scope === 'monthlyCap' || mine(a));

  const link = (a: Alert) => {
    if (a.scope === 'apiKey') return { href: `/org/${orgId}/keys${a.projectId ? `?project=${a.projectId}` : ''}`, label: 'View keys' };
    if (a.scope === 'member') return { href: `/org/${orgId}/team`, label: 'View budgets' };
    return { href: `/org/${orgId}/settings#spend-caps`, label: 'View caps' };
  };

  return (
    <Show when={visible().length > 0}>
      <div class="org-banners" role="region" aria-label="Spend limit notices" aria-live="polite">
        <For each={visible()}>
          {(a) => (
            <div class={`banner banner-${a.threshold === 100 ? 'danger' : a.threshold === 80 ? 'warning' : 'info'}`} data-testid={`limit-alert-${a.scope}`} data-threshold={a.threshold}>
              <p class="banner-text">
                <strong>{a.threshold === 100 ? 'Limit reached.' : `${a.threshold}% of a limit used.`}</strong> {limitAlertText(a, mine(a))}
              </p>
              <div class="banner-actions">
                <A href={link(a).href} class="btn btn-secondary btn-sm">
                  {link(a).label}
                </A>
                <button type="button" class="btn btn-ghost btn-sm" onClick={() => dismiss(a)} aria-label={`Dismiss: ${subjectText(a, mine(a))}`}>
                  Dismiss
                </button>
              </div>
            </div>
          )}
        </For>
      </div>
    </Show>
  );
}
