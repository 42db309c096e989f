/** Audit log: who did what, to what, with the before/after values; newest first, paged by cursor. */
import { createEffect, createSignal, For, Show } from 'solid-js';
import { api, type RouterOutputs } from '../api.js';
import { createCursorList } from '../state/cursor-list.js';
import { useOrg } from '../state/org-context.js';
import { Button, Card, createAction, EmptyState, LoadMoreFooter, LoadState, PageHeader } from '../ui/components.js';
import { formatDateTime } from '../ui/format.js';

type Entry = RouterOutputs['audit']['list']['items'][number];

const ACTION_LABELS: Record<string, string> = {
  'organization.created': 'Created the organization',
  'organization.updated': 'Changed settings',
  'project.created': 'Created a project',
  'project.updated': 'Updated a project',
  'project.deleted': 'Deleted a project',
  'invitation.created': 'Invited a member',
  'invitation.revoked': 'Revoked an invitation',
  'invitation.accepted': 'Accepted an invitation',
  'member.added': 'Added a member',
  'member.role_changed': 'Changed a role',
  'member.removed': 'Removed a member',
  'member.left': 'Left the organization',
  'billing.auto_top_up_updated': 'Changed auto top-up',
  'billing.auto_top_up_disabled': 'Auto top-up turned off',
  'billing.budget_alert_set': 'Set a budget alert',
  'billing.payment_method_default': 'Changed the default payment method',
  'billing.payment_method_removed': 'Removed a payment method',
  'billing.plan_changed': 'Changed the plan',
  'billing.purchase_refunded': 'Refunded a purchase',
  'billing.usage_credited_back': 'Credited back usage',
};

const FIELD_LABELS: Record<string, string> = {
  name: 'name',
  billingEmail: 'billing email',
  retentionLevel: 'retention',
  role: 'role',
  email: 'email',
  mode: 'mode',
  cachingEnabled: 'caching',
  cacheTtlSeconds: 'cache lifetime (s)',
  enabled: 'enabled',
  threshold: 'threshold',
  amount: 'amount',
  plan: 'plan',
  billingCycle: 'billing cycle',
  kind: 'kind',
  reason: 'reason',
  refundId: 'refund',
};

function describeValue(v: unknown): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function Changes(props: { before: Record<string, unknown> | null; after: Record<string, unknown> | null }) {
  const keys = () => [...new Set([...Object.keys(props.before ?? {}), ...Object.keys(props.after ?? {})])];
  return (
    <Show when={keys().length > 0} fallback={<span class="muted">—</span>}>
      <ul class="changes">
        <For each={keys()}>
          {(k) => (
            <li>
              <span class="change-key">{FIELD_LABELS[k] ?? k}</span>{' '}
              <Show when={props.before && k in props.before}>
                <del>{describeValue(props.before![k])}</del>
                <span aria-hidden="true"> → </span>
              </Show>
              <Show when={props.after && k in props.after} fallback={<span class="muted">removed</span>}>
                <ins>{describeValue(props.after![k])}</ins>
              </Show>
            </li>
          )}
        </For>
      </ul>
    </Show>
  );
}

export function AuditPage() {
  const ctx = useOrg();
  const [fresh, setFresh] = createSignal(0);
  const list = createCursorList<Entry>({ key: () => ctx.orgId(), fetch: (cursor) => api.audit.list.query({ orgId: ctx.orgId(), ...(cursor ? { cursor } : {}) }) });
  const { state } = list;
  const loadFirst = async () => {
    await list.loadFirst();
    if (state.loaded) setFresh(0);
  };
  const [loadingMore, loadMore] = createAction(() => list.loadMore());
  // Load once the role allows it (also when an admin promotes me while I look at this page).
  createEffect(() => {
    if (ctx.can('audit.view') && !state.loaded && !state.error) void loadFirst();
  });
  ctx.onEvent((e) => {
    if (e.type !== 'presence' && e.type !== 'usage' && e.type !== 'credits.changed') setFresh((n) => n + 1);
  });

  return (
    <Show
      when={ctx.can('audit.view')}
      fallback={
        <div class="page">
          <PageHeader title="Audit log" />
          <p class="role-note">Only owners and admins can view the audit log.</p>
        </div>
      }
    >
      <div class="page">
        <PageHeader
          title="Audit log"
          description="Every change to this organization: who made it, when, and what it changed."
          actions={
            <Button onClick={() => void loadFirst()} variant={fresh() > 0 ? 'primary' : 'secondary'}>
              {fresh() > 0 ? `Show new activity (${fresh()})` : 'Refresh'}
            </Button>
          }
        />
        <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
          <Show when={state.items.length > 0} fallback={<EmptyState title="Nothing recorded yet" />}>
            <Card>
              <div class="table-wrap">
                <table class="table table-stack">
                  <thead>
                    <tr>
                      <th scope="col">Time</th>
                      <th scope="col">Actor</th>
                      <th scope="col">Action</th>
                      <th scope="col" class="hide-sm">Target</th>
                      <th scope="col">Changes</th>
                    </tr>
                  </thead>
                  <tbody>
                    <For each={state.items}>
                      {(entry) => (
                        <tr>
                          <td data-label="Time" class="nowrap">{formatDateTime(entry.createdAt)}</td>
                          <td data-label="Actor">
                            <Show when={entry.actor} fallback={<span class="muted">System</span>}>
                              {(actor) => (
                                <div>
                                  <div class="cell-title">{actor().name}</div>
                                  <div class="muted small">{actor().email}</div>
                                </div>
                              )}
                            </Show>
                          </td>
                          <td data-label="Action">
                            <div>
                              <div>{ACTION_LABELS[entry.action] ?? entry.action}</div>
                              <code class="muted small">{entry.action}</code>
                            </div>
                          </td>
                          <td class="hide-sm">
                            <span class="muted small">{entry.target.type}</span>
                            <Show when={entry.target.id}>
                              <div>
                                <code class="small" title={entry.target.id!}>
                                  {entry.target.id!.slice(0, 8)}
                                </code>
                              </div>
                            </Show>
                          </td>
                          <td data-label="Changes">
                            <Changes before={entry.before} after={entry.after} />
                          </td>
                        </tr>
                      )}
                    </For>
                  </tbody>
                </table>
              </div>
              <LoadMoreFooter more={!!state.nextCursor} loading={loadingMore()} onLoad={() => void loadMore()} />
            </Card>
          </Show>
        </LoadState>
      </div>
    </Show>
  );
}
