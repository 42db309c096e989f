/** Team: members and roles, invitations (with a copyable link, since email may not be set up), leave. */
import { createSignal, For, onMount, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { assignableRoles, canChangeMember, ROLE_LABELS, ROLES, type Role } from '../../../shared/permissions.js';
import { inviteInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { me } from '../state/session.js';
import { confirmAction } from '../ui/confirm.js';
import { Avatar, Badge, Button, Card, CopyField, createAction, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDate } from '../ui/format.js';
import { validate, type FieldErrors } from '../ui/forms.js';
import { toast } from '../ui/toast.js';

type Member = RouterOutputs['team']['members'][number];
type Invitation = RouterOutputs['team']['invitations'][number];

export function TeamPage() {
  const ctx = useOrg();
  const [state, setState] = createStore({
    members: [] as Member[],
    invitations: [] as Invitation[],
    loaded: false,
    error: null as unknown,
  });

  const loadMembers = async () => {
    const list = await api.team.members.query({ orgId: ctx.orgId() });
    setState('members', reconcile(list, { key: 'userId' }));
  };
  const loadInvitations = async () => {
    const list = await api.team.invitations.query({ orgId: ctx.orgId() });
    setState('invitations', reconcile(list, { key: 'id' }));
  };
  const load = async () => {
    try {
      await Promise.all([loadMembers(), loadInvitations()]);
      setState({ loaded: true, error: null });
    } catch (err) {
      setState('error', err);
    }
  };
  onMount(() => void load());
  ctx.onEvent((e) => {
    if (e.type.startsWith('member.')) void loadMembers().catch(() => {});
    if (e.type.startsWith('invitation.') || e.type === 'member.added') void loadInvitations().catch(() => {});
  });

  const canManage = () => ctx.can('member.manage');
  const owners = () => state.members.filter((m) => m.role === 'owner').length;

  return (
    <div class="page">
      <PageHeader title="Team" description="Members, their roles, and pending invitations." />
      <Show when={canManage()}>
        <InviteCard orgId={ctx.orgId()} myRole={ctx.role()!} onInvited={() => void loadInvitations()} />
      </Show>
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
        <Card title={`Members (${state.members.length})`}>
          <div class="table-wrap">
            <table class="table table-stack" data-testid="members">
              <thead>
                <tr>
                  <th scope="col">Member</th>
                  <th scope="col">Role</th>
                  <th scope="col" class="hide-sm">Joined</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={state.members}>
                  {(m) => <MemberRow member={m} soleOwner={m.role === 'owner' && owners() <= 1} onChanged={() => void loadMembers()} />}
                </For>
              </tbody>
            </table>
          </div>
        </Card>
        <Card title={`Pending invitations (${state.invitations.length})`}>
          <Show when={state.invitations.length > 0} fallback={<p class="muted card-pad">No pending invitations.</p>}>
            <div class="table-wrap">
              <table class="table table-stack">
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col" class="hide-sm">Sent</th>
                    <th scope="col">Expires</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.invitations}>{(i) => <InvitationRow invitation={i} canRevoke={canManage()} onChanged={() => void loadInvitations()} />}</For>
                </tbody>
              </table>
            </div>
          </Show>
        </Card>
      </LoadState>
    </div>
  );
}

function InviteCard(props: { orgId: string; myRole: Role; onInvited: () => void }) {
  const roles = () => assignableRoles(props.myRole);
  const [email, setEmail] = createSignal('');
  const [role, setRole] = createSignal<Role>('developer');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [result, setResult] = createSignal<{ email: string; url: string } | null>(null);
  const [pending, invite] = createAction(
    async () => {
      const checked = validate(inviteInput, { orgId: props.orgId, email: email(), role: role() });
      if (!checked.ok) return setErrors(checked.errors);
      setErrors({});
      const res = await api.team.invite.mutate(checked.data);
      setResult({ email: res.invitation.email, url: res.inviteUrl });
      setEmail('');
      toast.success(`Invitation created for ${res.invitation.email}.`);
      props.onInvited();
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        setErrors(Object.keys(fields).length ? fields : { email: errorMessage(err) });
      },
    },
  );
  return (
    <Card title="Invite a member" description="They get an email if email delivery is configured; you can always share the link yourself.">
      <form
        class="invite-form"
        onSubmit={(e) => {
          e.preventDefault();
          void invite();
        }}
        novalidate
      >
        <TextField label="Email" type="email" value={email()} onInput={setEmail} error={errors().email} placeholder="teammate@example.com" />
        <SelectField
          label="Role"
          value={role()}
          onChange={setRole}
          error={errors().role}
          options={roles().map((r) => ({ value: r, label: ROLE_LABELS[r] }))}
        />
        <div class="invite-submit">
          <Button type="submit" variant="primary" loading={pending()}>
            Send invitation
          </Button>
        </div>
      </form>
      <Show when={result()}>
        {(r) => (
          <div class="invite-result">
            <CopyField
              label={`Invitation link for ${r().email}`}
              value={r().url}
              testId="invite-url"
              hint="Anyone with this link can see the invitation; only that email's account can accept it. It works once and expires in 7 days."
            />
          </div>
        )}
      </Show>
    </Card>
  );
}

function MemberRow(props: { member: Member; soleOwner: boolean; onChanged: () => void }) {
  const ctx = useOrg();
  const isMe = () => props.member.userId === me()?.id;
  const myRole = () => ctx.role();
  const roleOptions = () => {
    const actor = myRole();
    if (!actor) return [props.member.role];
    return ROLES.filter((r) => r === props.member.role || (assignableRoles(actor).includes(r) && canChangeMember(actor, props.member.role, r)));
  };
  const canEditRole = () => roleOptions().length > 1 && !(props.soleOwner && props.member.role === 'owner');
  const canRemove = () => !isMe() && !!myRole() && canChangeMember(myRole()!, props.member.role, null) && !props.soleOwner;

  const [changing, changeRole] = createAction(async (role: Role) => {
    try {
      await api.team.updateRole.mutate({ orgId: ctx.orgId(), userId: props.member.userId, role });
      toast.success(`${props.member.name} is now ${ROLE_LABELS[role]}.`);
      return true;
    } finally {
      props.onChanged();
    }
  });
  const [removing, remove] = createAction(async () => {
    const ok = await confirmAction({
      title: `Remove ${props.member.name}?`,
      body: `${props.member.name} (${props.member.email}) loses access to ${ctx.org()?.name} at once. Their personal API tokens stop working here.`,
      confirmLabel: 'Remove member',
      danger: true,
    });
    if (!ok) return;
    await api.team.removeMember.mutate({ orgId: ctx.orgId(), userId: props.member.userId });
    toast.success(`${props.member.name} was removed.`);
    props.onChanged();
  });
  const [leaving, leave] = createAction(async () => {
    const ok = await confirmAction({
      title: `Leave ${ctx.org()?.name}?`,
      body: 'You lose access at once. To come back, someone has to invite you again.',
      confirmLabel: 'Leave organization',
      danger: true,
    });
    if (!ok) return;
    await api.team.leave.mutate({ orgId: ctx.orgId() });
    void ctx.depart(`You left ${ctx.org()?.name ?? 'the organization'}.`);
  });

  return (
    <tr data-testid={`member-${props.member.email}`}>
      <td>
        <div class="member-cell">
          <Avatar name={props.member.name} id={props.member.userId} />
          <div>
            <div class="cell-title">
              {props.member.name} <Show when={isMe()}><Badge>You</Badge></Show>
            </div>
            <div class="muted small">{props.member.email}</div>
          </div>
        </div>
      </td>
      <td data-label="Role">
        <Show when={canEditRole()} fallback={<Badge tone={props.member.role === 'owner' ? 'accent' : 'neutral'}>{ROLE_LABELS[props.member.role]}</Badge>}>
          <select
            class="input input-sm"
            aria-label={`Role of ${props.member.name}`}
            value={props.member.role}
            disabled={changing()}
            onChange={(e) => {
              const select = e.currentTarget;
              const role = select.value as Role;
              if (role === props.member.role) return;
              void changeRole(role).then((ok) => {
                if (!ok) select.value = props.member.role;
              });
            }}
          >
            <For each={roleOptions()}>{(r) => <option value={r}>{ROLE_LABELS[r]}</option>}</For>
          </select>
        </Show>
      </td>
      <td class="nowrap hide-sm">{formatDate(props.member.joinedAt)}</td>
      <td class="row-actions">
        <Show when={isMe()}>
          <Button
            size="sm"
            variant="ghost"
            class="text-danger"
            loading={leaving()}
            disabled={props.soleOwner}
            title={props.soleOwner ? 'You are the only owner: make someone else an owner first' : undefined}
            onClick={() => void leave()}
          >
            Leave
          </Button>
        </Show>
        <Show when={canRemove()}>
          <Button size="sm" variant="ghost" class="text-danger" loading={removing()} onClick={() => void remove()}>
            Remove<span class="sr-only"> {props.member.name}</span>
          </Button>
        </Show>
      </td>
    </tr>
  );
}

function InvitationRow(props: { invitation: Invitation; canRevoke: boolean; onChanged: () => void }) {
  const [revoking, revoke] = createAction(async () => {
    const ok = await confirmAction({
      title: `Revoke the invitation for ${props.invitation.email}?`,
      body: 'The link stops working. You can invite them again later.',
      confirmLabel: 'Revoke invitation',
      danger: true,
    });
    if (!ok) return;
    await api.team.revokeInvitation.mutate({ invitationId: props.invitation.id });
    toast.success(`Invitation for ${props.invitation.email} revoked.`);
    props.onChanged();
  });
  return (
    <tr>
      <td>{props.invitation.email}</td>
      <td data-label="Role">
        <Badge>{ROLE_LABELS[props.invitation.role]}</Badge>
      </td>
      <td class="nowrap hide-sm">{formatDate(props.invitation.createdAt)}</td>
      <td data-label="Expires" class="nowrap">{formatDate(props.invitation.expiresAt)}</td>
      <td class="row-actions">
        <Show when={props.canRevoke}>
          <Button size="sm" variant="ghost" class="text-danger" loading={revoking()} onClick={() => void revoke()}>
            Revoke<span class="sr-only"> invitation for {props.invitation.email}</span>
          </Button>
        </Show>
      </td>
    </tr>
  );
}
