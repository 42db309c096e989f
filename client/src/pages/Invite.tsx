/** /invite/:token: what the invitation is, then sign in or up (email pre-filled) and accept. */
import { A, useNavigate, useParams } from '@solidjs/router';
import { createResource, createSignal, Match, Show, Switch } from 'solid-js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { api, errorCode, errorMessage } from '../api.js';
import { refreshOrgs } from '../state/orgs.js';
import { me, signOut } from '../state/session.js';
import { Badge, Button, ErrorState, Loading } from '../ui/components.js';
import { formatDate } from '../ui/format.js';
import { toast } from '../ui/toast.js';
import { AuthFrame, withNext } from './Auth.js';

export function InvitePage() {
  const params = useParams<{ token: string }>();
  const navigate = useNavigate();
  const [preview, { refetch }] = createResource(
    () => params.token,
    (token) => api.team.invitationPreview.query({ token }),
  );
  const [accepting, setAccepting] = createSignal(false);
  const [acceptError, setAcceptError] = createSignal<string | null>(null);
  const here = () => `/invite/${params.token}`;

  const accept = async () => {
    setAccepting(true);
    setAcceptError(null);
    try {
      const { orgId } = await api.team.acceptInvitation.mutate({ token: params.token });
      await refreshOrgs().catch(() => {});
      toast.success(`Welcome to ${preview()?.organizationName ?? 'the organization'}!`);
      navigate(`/org/${orgId}/overview`, { replace: true });
    } catch (err) {
      setAcceptError(errorMessage(err));
      void refetch();
    } finally {
      setAccepting(false);
    }
  };

  return (
    <AuthFrame title="Invitation">
      <Switch>
        <Match when={preview.loading}>
          <Loading label="Checking the invitation…" />
        </Match>
        <Match when={preview.error}>
          <Show
            when={errorCode(preview.error) === 'NOT_FOUND' || errorCode(preview.error) === 'BAD_REQUEST'}
            fallback={<ErrorState error={preview.error} retry={() => void refetch()} />}
          >
            <p class="form-error" role="alert">
              This invitation link is not valid. Check that you copied the whole link, or ask for a new invitation.
            </p>
          </Show>
        </Match>
        <Match when={preview()}>
          {(p) => (
            <>
              <div class="invite-summary">
                <p class="invite-lead">
                  <strong>{p().inviterName ?? 'A teammate'}</strong> invited you to join <strong data-testid="invite-org">{p().organizationName}</strong> as{' '}
                  <Badge tone="accent">{ROLE_LABELS[p().role]}</Badge>
                </p>
                <dl class="facts">
                  <div>
                    <dt>For</dt>
                    <dd>{p().email}</dd>
                  </div>
                  <div>
                    <dt>Status</dt>
                    <dd>
                      <InvitationStatus status={p().status} />
                    </dd>
                  </div>
                  <Show when={p().status === 'pending'}>
                    <div>
                      <dt>Expires</dt>
                      <dd>{formatDate(p().expiresAt)}</dd>
                    </div>
                  </Show>
                </dl>
              </div>
              <Show when={acceptError()}>
                <p class="form-error" role="alert">
                  {acceptError()}
                </p>
              </Show>
              <Switch>
                <Match when={p().status === 'accepted'}>
                  <p class="muted">This invitation has already been used.</p>
                  <A class="btn btn-secondary btn-block" href={me() ? '/' : withNext('/signin', { email: p().email })}>
                    {me() ? 'Go to the dashboard' : 'Sign in'}
                  </A>
                </Match>
                <Match when={p().status === 'revoked'}>
                  <p class="muted">This invitation was revoked. Ask the person who invited you for a new one.</p>
                </Match>
                <Match when={p().status === 'declined'}>
                  <p class="muted">You declined this invitation. Ask the person who invited you for a new one if you changed your mind.</p>
                </Match>
                <Match when={p().status === 'expired'}>
                  <p class="muted">This invitation has expired. Ask the person who invited you for a new one.</p>
                </Match>
                <Match when={!me()}>
                  <p class="muted">Create an account with {p().email}, or sign in if you already have one, to accept.</p>
                  <div class="stack">
                    <A class="btn btn-primary btn-block" href={withNext('/signup', { email: p().email, next: here() })}>
                      Create an account
                    </A>
                    <A class="btn btn-secondary btn-block" href={withNext('/signin', { email: p().email, next: here() })}>
                      I have an account: sign in
                    </A>
                  </div>
                </Match>
                <Match when={me()!.email !== p().email}>
                  <p class="form-error" role="alert">
                    This invitation was sent to {p().email}, but you are signed in as {me()!.email}.
                  </p>
                  <Button class="btn-block" onClick={() => void signOut(withNext('/signin', { email: p().email, next: here() }))}>
                    Sign out and use {p().email}
                  </Button>
                </Match>
                <Match when={true}>
                  <Button variant="primary" class="btn-block" loading={accepting()} onClick={() => void accept()}>
                    Accept invitation
                  </Button>
                </Match>
              </Switch>
            </>
          )}
        </Match>
      </Switch>
    </AuthFrame>
  );
}

function InvitationStatus(props: { status: string }) {
  const tone = () => (props.status === 'pending' ? 'success' : props.status === 'accepted' ? 'neutral' : 'warning');
  const label = () => ({ pending: 'Waiting for you', accepted: 'Accepted', revoked: 'Revoked', declined: 'Declined', expired: 'Expired' })[props.status] ?? props.status;
  return <Badge tone={tone()}>{label()}</Badge>;
}
