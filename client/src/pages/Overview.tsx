/** Overview: credits, plan, and places the usage charts will fill. */
import { A } from '@solidjs/router';
import { createResource, Show } from 'solid-js';
import { formatDollars } from '../../../shared/money.js';
import { PLANS, type PlanId } from '../../../shared/plans.js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { api } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { Badge, Card, PageHeader } from '../ui/components.js';

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
            {formatDollars(org().credits)}
          </p>
          <p class="stat-hint">1 credit = $1. Used by requests routed on credits.</p>
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
        <Card title="Usage" description="Requests, tokens and cost over the last 30 days.">
          <div class="placeholder" aria-label="Usage chart placeholder">
            <p>Usage analytics will appear here once requests flow through the gateway.</p>
          </div>
          <dl class="facts facts-inline">
            <div>
              <dt>Requests</dt>
              <dd>—</dd>
            </div>
            <div>
              <dt>Tokens</dt>
              <dd>—</dd>
            </div>
            <div>
              <dt>Cost</dt>
              <dd>—</dd>
            </div>
            <div>
              <dt>Cache hit rate</dt>
              <dd>—</dd>
            </div>
          </dl>
        </Card>
        <Card title="Credits" description="Balance and recent movements.">
          <div class="placeholder">
            <p>
              Balance: <strong>{formatDollars(org().credits)}</strong>
            </p>
            <p class="muted">Purchases, auto top-up and transaction history will appear here.</p>
          </div>
          <Show when={ctx.can('billing.view')}>
            <p class="field-hint">Data retention: {org().retentionLevel === 'retain' ? 'request bodies kept' : 'metadata only'}.</p>
          </Show>
        </Card>
      </div>
    </div>
  );
}
