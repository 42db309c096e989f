/**
 * "/": invitations waiting for the user's verified address (to accept or decline), else the last
 * organization used, the first one, or the create-organization screen.
 */
import { useNavigate } from '@solidjs/router';
import { createSignal, For, onMount, Show } from 'solid-js';
import { api, errorMessage, type RouterOutputs } from '../api.js';
import { defaultOrgPath, refreshOrgs, rememberOrg } from '../state/orgs.js';
import { me } from '../state/session.js';
import { Badge, Button, Card, ErrorState, Loading, PageHeader } from '../ui/components.js';
import { formatDate } from '../ui/format.js';
import { toast } from '../ui/toast.js';
import { ROLE_LABELS } from '../../../shared/permissions.js';

type Pending = RouterOutputs['auth']['pendingInvitations'][number];

export function HomePage() {
  const navigate = useNavigate();
  const [error, setError] = createSignal<unknown>(null);
  const [pending, setPending] = createSignal<Pending[] | null>(null);
  const [hasOrgs, setHasOrgs] = createSignal(false);
  const [busy, setBusy] = createSignal<string | null>(null);

  const continueToDashboard = async () => {
    const list = await refreshOrgs();
    navigate(defaultOrgPath(list), { replace: true });
  };
  const go = async () => {
    setError(null);
    try {
      const [list, invitations] = await Promise.all([refreshOrgs(), api.auth.pendingInvitations.query()]);
      if (invitations.length === 0) return navigate(defaultOrgPath(list), { replace: true });
      setHasOrgs(list.length > 0);
      setPending(invitations);
    } catch (err) {
      setError(err);
    }
  };
  onMount(() => void go());

  const accept = async (i: Pending) => {
    setBusy(i.id);
    try {
      const { orgId } = await api.team.acceptPendingInvitation.mutate({ invitationId: i.id });
      await refreshOrgs().catch(() => {});
      rememberOrg(orgId);
      toast.success(`You joined ${i.organizationName}.`);
      navigate(`/org/${orgId}/overview`);
    } catch (err) {
      toast.error(errorMessage(err));
      void go();
    } finally {
      setBusy(null);
    }
  };
  const decline = async (i: Pending) => {
    setBusy(i.id);
    try {
      await api.team.declineInvitation.mutate({ invitationId: i.id });
      toast.success(`Invitation to ${i.organizationName} declined.`);
      const rest = (pending() ?? []).filter((p) => p.id !== i.id);
      if (rest.length === 0) await continueToDashboard();
      else setPending(rest);
    } catch (err) {
      toast.error(errorMessage(err));
    } finally {
      setBusy(null);
    }
  };

  return (
    <div class="page page-narrow">
      <Show when={!error()} fallback={<ErrorState error={error()} retry={() => void go()} />}>
        <Show when={pending()} fallback={<Loading label="Opening your dashboard…" />}>
          {(list) => (
            <>
              <PageHeader title={`Welcome, ${me()?.name ?? ''}`} description={`Invitations sent to ${me()?.email ?? 'your address'} are waiting for you.`} />
              <Card title="Pending invitations">
                <ul class="pending-invitations" data-testid="pending-invitations">
                  <For each={list()}>
                    {(i) => (
                      <li class="pending-invitation">
                        <div class="pending-invitation-main">
                          <span class="cell-title">{i.organizationName}</span>
                          <Badge tone="accent">{ROLE_LABELS[i.role]}</Badge>
                          <span class="muted pending-invitation-meta">
                            Invited by {i.inviterName ?? 'a member'}
                            {i.inviterEmail ? ` (${i.inviterEmail})` : ''} on {formatDate(i.createdAt)} · expires {formatDate(i.expiresAt)}
                          </span>
                        </div>
                        <div class="pending-invitation-actions">
                          <Button variant="primary" size="sm" loading={busy() === i.id} disabled={!!busy()} onClick={() => void accept(i)}>
                            Accept<span class="sr-only"> the invitation to {i.organizationName}</span>
                          </Button>
                          <Button size="sm" disabled={!!busy()} onClick={() => void decline(i)}>
                            Decline<span class="sr-only"> the invitation to {i.organizationName}</span>
                          </Button>
                        </div>
                      </li>
                    )}
                  </For>
                </ul>
              </Card>
              <div class="form-actions">
                <Button onClick={() => void continueToDashboard().catch((err) => toast.error(errorMessage(err)))}>
                  {hasOrgs() ? 'Continue to your dashboard' : 'Create an organization instead'}
                </Button>
              </div>
            </>
          )}
        </Show>
      </Show>
    </div>
  );
}
