/** Overview: credits (live), plan, and the last 24 hours of gateway usage (live). */
import { A } from '@solidjs/router';
import { createResource, For, onCleanup, onMount, Show } from 'solid-js';
import { PLANS, type PlanId } from '../../../shared/plans.js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { api } from '../api.js';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { Badge, Card, LoadState, PageHeader } from '../ui/components.js';
import { formatDateTime, formatMoney } from '../ui/format.js';
import { formatAmount, TYPE_LABELS } from './billing/common.js';
import { CostChart, NoTraffic, RequestsChart } from './Analytics.js';
import { createUsage } from '../state/usage.js';
import { formatCost, formatCount, formatPercent } from '../ui/usage-format.js';

export function OverviewPage() {
  const ctx = useOrg();
  const org = () => ctx.org()!;
  const [projects, { refetch: refetchProjects }] = createResource(() => api.project.list.query({ orgId: ctx.orgId() }));
  const [members, { refetch: refetchMembers }] = createResource(() => api.team.members.query({ orgId: ctx.orgId() }));
  ctx.onEvent((e) => {
    if (e.type.startsWith('project.')) void refetchProjects();
    if (e.type.startsWith('member.')) void refetchMembers();
  });
  const plan = () => PLANS[org().plan as PlanId] ?? PLANS.free;
  const count = (list: { length: number } | undefined, loading: boolean) => (loading && !list ? '…' : String(list?.length ?? '—'));

  return (
    <div class="page">
      <PageHeader
        title="Overview"
        description={
          <>
            {org().name} · you are <Badge tone="accent">{ROLE_LABELS[org().myRole]}</Badge>
          </>
        }
      />
      <div class="grid grid-4">
        <Card class="stat">
          <p class="stat-label">Credits</p>
          <p class="stat-value" data-testid="credits">
            {formatMoney(org().credits)}
          </p>
          <p class="stat-hint">
            <Show when={ctx.can('billing.view')} fallback="1 credit = $1. Used by requests routed on credits.">
              1 credit = $1 · <A href={`/org/${ctx.orgId()}/billing`}>Billing</A>
            </Show>
          </p>
        </Card>
        <Card class="stat">
          <p class="stat-label">Plan</p>
          <p class="stat-value">{plan().name}</p>
          <p class="stat-hint">
            {org().billingCycle ? `Billed ${org().billingCycle}` : plan().support}
          </p>
        </Card>
        <Card class="stat">
          <p class="stat-label">Projects</p>
          <p class="stat-value">{count(projects(), projects.loading)}</p>
          <p class="stat-hint">
            <A href={`/org/${ctx.orgId()}/projects`}>Manage projects</A>
          </p>
        </Card>
        <Card class="stat">
          <p class="stat-label">Members</p>
          <p class="stat-value">{count(members(), members.loading)}</p>
          <p class="stat-hint">
            <A href={`/org/${ctx.orgId()}/team`}>Manage team</A>
          </p>
        </Card>
      </div>
      <div class="grid grid-2">
        <UsageCard />
        <CreditsCard />
      </div>
    </div>
  );
}

function CreditsCard() {
  const ctx = useOrg();
  const billingPath = () => `/org/${ctx.orgId()}/billing`;
  const autoTopUp = () => ctx.billing.overview()?.autoTopUp;
  return (
    <Card
      title="Credits"
      description={ctx.can('billing.view') ? 'Balance and recent movements.' : 'The balance requests routed on credits draw from.'}
      actions={
        <Show when={ctx.can('billing.view')}>
          <A href={billingPath()} class="btn btn-secondary btn-sm">
            Open billing
          </A>
        </Show>
      }
    >
      <p class="balance balance-sm" data-testid="overview-balance" aria-live="polite">
        {formatMoney(ctx.org()?.credits ?? '0')}
      </p>
      <Show
        when={ctx.can('billing.view')}
        fallback={<p class="muted">Owners buy credits and manage billing. Ask one of them if the balance runs low.</p>}
      >
        <Show when={autoTopUp()}>
          {(a) => (
            <p class="muted small">
              {a().enabled
                ? `Auto top-up adds ${formatMoney(a().amount)} below ${formatMoney(a().threshold)}.`
                : 'Auto top-up is off.'}
              <Show when={ctx.can('billing.manage')}>
                {' '}
                <A href={`${billingPath()}#add-credits`}>Add credits</A>
              </Show>
            </p>
          )}
        </Show>
        <RecentTransactions />
      </Show>
    </Card>
  );
}

/** The last few ledger entries; refreshed (at most every 2 s) when the balance changes. */
function RecentTransactions() {
  const ctx = useOrg();
  const { state, load } = createReloadingList(async () => (await api.billing.transactions.query({ orgId: ctx.orgId(), limit: 5 })).items);
  let timer: ReturnType<typeof setTimeout> | undefined;
  onMount(() => void load());
  onCleanup(() => clearTimeout(timer));
  ctx.onEvent((e) => {
    if (e.type !== 'credits.changed' || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void load();
    }, 2000);
  });
  return (
    <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
      <Show when={state.items.length > 0} fallback={<p class="muted small">No transactions yet.</p>}>
        <ul class="mini-ledger" aria-label="Recent transactions">
          <For each={state.items}>
            {(t) => (
              <li>
                <span class="mini-ledger-what">
                  <span>{TYPE_LABELS[t.type] ?? t.type}</span>
                  <span class="muted small">{formatDateTime(t.createdAt)}</span>
                </span>
                <span class="num" classList={{ 'amount-in': !t.amount.startsWith('-'), 'amount-out': t.amount.startsWith('-') }}>
                  {formatAmount(t.amount, { signed: true })}
                </span>
              </li>
            )}
          </For>
        </ul>
        <p class="card-link">
          <A href={`/org/${ctx.orgId()}/billing/transactions`}>All transactions</A>
        </p>
      </Show>
    </LoadState>
  );
}

/** Requests, tokens, cost and cache hits of the last 24 hours, moving as traffic flows. */
function UsageCard() {
  const ctx = useOrg();
  const usage = createUsage(ctx, () => ({ range: '24h', projectId: null }));
  const s = () => usage.state.summary;
  return (
    <Card
      title="Usage"
      description="Requests, tokens and cost over the last 24 hours."
      actions={
        <A href={`/org/${ctx.orgId()}/analytics`} class="btn btn-secondary btn-sm">
          Analytics
        </A>
      }
    >
      <LoadState loaded={usage.state.loaded} error={usage.state.error} retry={() => void usage.reload()}>
        <dl class="facts facts-inline" aria-live="polite">
          <div>
            <dt>Requests</dt>
            <dd data-testid="overview-requests">{formatCount(s()?.requests)}</dd>
          </div>
          <div>
            <dt>Tokens</dt>
            <dd>{formatCount((s()?.inputTokens ?? 0) + (s()?.outputTokens ?? 0))}</dd>
          </div>
          <div>
            <dt>Cost</dt>
            <dd data-testid="overview-cost">{formatCost(s()?.cost)}</dd>
          </div>
          <div>
            <dt>Cache hit rate</dt>
            <dd>{formatPercent(s()?.cacheHitRate)}</dd>
          </div>
        </dl>
        <Show when={(s()?.requests ?? 0) > 0} fallback={<NoTraffic range="last 24 hours" compact />}>
          <RequestsChart series={usage.state.series} testId="overview-requests-chart" height={180} />
          <Show when={Number(s()?.cost ?? 0) > 0}>
            <CostChart series={usage.state.series} height={140} />
          </Show>
        </Show>
      </LoadState>
    </Card>
  );
}
