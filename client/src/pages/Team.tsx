/**
 * Team: members and roles, their budgets (spent / budget, live; set by owners and admins),
 * invitations (with a copyable link, since email may not be set up), leave.
 */
import { createEffect, createSignal, createUniqueId, For, on, onMount, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { assignableRoles, canChangeMember, ROLE_LABELS, ROLES, type Role } from '../../../shared/permissions.js';
import { inviteInput } from '../../../shared/schemas.js';
import { api, errorCode, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { me } from '../state/session.js';
import { confirmAction, FormDialog, openDialog, restoreFocus } from '../ui/confirm.js';
import { Avatar, Badge, Button, Card, CopyField, createAction, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDate, formatMoney } from '../ui/format.js';
import { validate, type FieldErrors } from '../ui/forms.js';
import { toast } from '../ui/toast.js';
import type { LimitPeriod } from '../../../shared/limits.js';
import { createSpendRefresh, parseAmount, PERIOD_SHORT, SpendLimitFields, SpendMeter } from '../ui/limits.js';

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
  // Budgets burn down with traffic: refresh at most every 2 s while it flows.
  // The developers' default budget lives in the organization's settings.
  createSpendRefresh(ctx.onEvent, () => void loadMembers().catch(() => {}), (e) => e.type === 'organization.updated');
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
                  <th scope="col">Budget</th>
                  <th scope="col" class="hide-sm">Joined</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={state.members}>
                  {(m) => (
                    <MemberRow
                      member={m}
                      others={state.members.filter((o) => o.userId !== m.userId)}
                      soleOwner={m.role === 'owner' && owners() <= 1}
                      onChanged={() => void loadMembers()}
                    />
                  )}
                </For>
              </tbody>
            </table>
          </div>
        </Card>
        <DeveloperBudgetCard />
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
      // Re-inviting an address replaces its pending invitation: say what happened to the earlier link.
      toast.success(
        res.replaced.length
          ? `New invitation sent to ${res.invitation.email}. It replaces the one sent ${new Date(res.replaced[0]!.createdAt).toLocaleDateString()}: that earlier link no longer works.`
          : `Invitation created for ${res.invitation.email}.`,
      );
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

const keysText = (n: number) => `${n} API key${n === 1 ? '' : 's'}`;

function MemberRow(props: { member: Member; others: Member[]; soleOwner: boolean; onChanged: () => void }) {
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
  const [removeOpen, setRemoveOpen] = createSignal(false);
  const [budgetOpen, setBudgetOpen] = createSignal(false);
  const [leaving, leave] = createAction(async () => {
    const keys = props.member.activeApiKeys;
    const ok = await confirmAction({
      title: `Leave ${ctx.org()?.name}?`,
      body:
        'You lose access at once. To come back, someone has to invite you again.' +
        (keys > 0 ? ` The ${keysText(keys)} you created here ${keys === 1 ? 'is' : 'are'} revoked and stop${keys === 1 ? 's' : ''} working at once (an owner or admin can transfer them if they remove you instead).` : ''),
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
      <td data-label="Budget">
        <SpendMeter
          spent={props.member.spent}
          limit={props.member.budget?.amount}
          period={props.member.budget?.period}
          resetsAt={props.member.resetsAt}
          label={`Spend of ${props.member.name} against their budget`}
          testId={`member-spend-${props.member.userId}`}
          noLimit="No budget"
        />
        <Show when={props.member.budgetSource === 'developerDefault'}>
          <span class="muted small">Developers' default</span>
        </Show>
      </td>
      <td class="nowrap hide-sm">{formatDate(props.member.joinedAt)}</td>
      <td class="row-actions">
        <Show when={!!myRole() && canChangeMember(myRole()!, props.member.role, props.member.role)}>
          <Button size="sm" variant="ghost" onClick={() => setBudgetOpen(true)}>
            Set budget<span class="sr-only"> of {props.member.name}</span>
          </Button>
        </Show>
        <Show when={budgetOpen()}>
          <BudgetDialog
            member={props.member}
            onClose={(changed) => {
              setBudgetOpen(false);
              if (changed) props.onChanged();
            }}
          />
        </Show>
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
          <Button size="sm" variant="ghost" class="text-danger" onClick={() => setRemoveOpen(true)}>
            Remove<span class="sr-only"> {props.member.name}</span>
          </Button>
        </Show>
        <Show when={removeOpen()}>
          <RemoveMemberDialog
            member={props.member}
            others={props.others}
            onClose={(removed) => {
              setRemoveOpen(false);
              if (removed) props.onChanged();
            }}
          />
        </Show>
      </td>
    </tr>
  );
}

/**
 * Removing a member says what happens to the API keys they created: revoked (they stop working at
 * once, on every call) or transferred to a member who stays, who then owns them.
 */
function RemoveMemberDialog(props: { member: Member; others: Member[]; onClose: (removed: boolean) => void }) {
  const ctx = useOrg();
  const id = createUniqueId();
  let dialog!: HTMLDialogElement;
  const [choice, setChoice] = createSignal<'revoke' | 'transfer'>('revoke');
  const [heir, setHeir] = createSignal(props.others.find((m) => m.userId === me()?.id)?.userId ?? props.others[0]?.userId ?? '');
  const [error, setError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  const keys = () => props.member.activeApiKeys;
  const heirName = () => props.others.find((m) => m.userId === heir())?.name ?? 'the chosen member';
  let opener: Element | null = null;
  onMount(() => (opener = openDialog(dialog)));
  const close = (removed: boolean) => {
    if (dialog.open) dialog.close();
    props.onClose(removed);
    restoreFocus(opener);
  };
  const submit = async () => {
    if (pending()) return;
    setPending(true);
    setError(null);
    try {
      const transferKeysTo = keys() > 0 && choice() === 'transfer' ? heir() : undefined;
      const res = await api.team.removeMember.mutate({ orgId: ctx.orgId(), userId: props.member.userId, transferKeysTo });
      const { revoked, transferred } = res.apiKeys;
      toast.success(
        `${props.member.name} was removed.` +
          (revoked > 0 ? ` ${keysText(revoked)} revoked.` : '') +
          (transferred > 0 ? ` ${keysText(transferred)} now belong${transferred === 1 ? 's' : ''} to ${heirName()}.` : ''),
      );
      close(true);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return (
    <FormDialog
      ref={(el) => {
        dialog = el;
      }}
      titleId={`${id}-title`}
      testId="remove-member-dialog"
      pending={pending()}
      onClose={() => close(false)}
      onSubmit={() => void submit()}
    >
        <h2 id={`${id}-title`}>Remove {props.member.name}?</h2>
        <p>
          {props.member.name} ({props.member.email}) loses access to {ctx.org()?.name} at once. Their personal API tokens stop working here.
        </p>
        <Show when={keys() > 0} fallback={<p data-testid="remove-member-keys">They created no API keys in this organization.</p>}>
          <p data-testid="remove-member-keys">
            {props.member.name} created {keysText(keys())} that {keys() === 1 ? 'is' : 'are'} still active. What happens to {keys() === 1 ? 'it' : 'them'}?
          </p>
          <fieldset class="radio-group" aria-label="Their API keys">
            <label class="radio-card" classList={{ selected: choice() === 'revoke' }}>
              <input type="radio" name={`${id}-keys`} value="revoke" checked={choice() === 'revoke'} onChange={() => setChoice('revoke')} />
              Revoke {keys() === 1 ? 'it' : 'them'}: {keys() === 1 ? 'it stops' : 'they stop'} working at once, on every call
            </label>
            <label class="radio-card" classList={{ selected: choice() === 'transfer' }}>
              <input type="radio" name={`${id}-keys`} value="transfer" checked={choice() === 'transfer'} disabled={props.others.length === 0} onChange={() => setChoice('transfer')} />
              Transfer {keys() === 1 ? 'it' : 'them'} to a member who stays ({keys() === 1 ? 'it keeps' : 'they keep'} working)
            </label>
          </fieldset>
          <Show when={choice() === 'transfer'}>
            <SelectField label="New owner of the keys" value={heir()} onChange={setHeir} options={props.others.map((m) => ({ value: m.userId, label: `${m.name} (${m.email})` }))} />
          </Show>
        </Show>
        <Show when={error()}>
          <p class="form-error" role="alert" data-testid="dialog-error">
            {error()}
          </p>
        </Show>
        <div class="dialog-actions">
          <button type="button" class="btn btn-secondary" disabled={pending()} onClick={() => close(false)} data-autofocus>
            Cancel
          </button>
          <button type="submit" class="btn btn-danger" disabled={pending()} aria-busy={pending() ? 'true' : undefined}>
            <Show when={pending()}>
              <span class="spinner" aria-hidden="true" />
            </Show>
            {keys() === 0 ? 'Remove member' : choice() === 'transfer' ? `Remove and transfer ${keysText(keys())}` : `Remove and revoke ${keysText(keys())}`}
          </button>
        </div>
    </FormDialog>
  );
}

/**
 * The budget every developer without one of their own gets (organization.update developerBudget):
 * owners and admins set it, everyone sees it.
 */
function DeveloperBudgetCard() {
  const ctx = useOrg();
  const canEdit = () => ctx.can('member.manage');
  const current = () => ctx.org()?.developerBudget ?? null;
  const [amount, setAmount] = createSignal(current()?.amount ?? '');
  const [period, setPeriod] = createSignal<LimitPeriod>(current()?.period ?? 'month');
  const [error, setError] = createSignal<string | undefined>();
  const reset = () => {
    setAmount(current()?.amount ?? '');
    setPeriod(current()?.period ?? 'month');
  };
  const dirty = () => {
    const c = current();
    const text = amount().trim();
    if (!c) return text !== '';
    return text === '' || Number(text.replace(/^\$/, '')) !== Number(c.amount) || period() !== c.period;
  };
  // Changed elsewhere: show it, unless I am editing.
  createEffect(
    on(
      () => JSON.stringify(current()),
      () => {
        if (!dirty()) reset();
      },
      { defer: true },
    ),
  );
  const [saving, save] = createAction(
    async () => {
      const parsed = parseAmount(amount(), { max: 1_000_000 });
      if (!parsed.ok) return setError(parsed.error);
      setError(undefined);
      const updated = await api.organization.update.mutate({
        orgId: ctx.orgId(),
        version: ctx.org()!.version,
        developerBudget: parsed.value === null ? null : { amount: parsed.value, period: period() },
      });
      ctx.setOrg({ ...ctx.org()!, ...updated });
      toast.success(parsed.value === null ? 'Developers have no default budget now.' : "Developers' default budget saved.");
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        setError(fields.developerBudget ?? errorMessage(err));
        if (errorCode(err) === 'CONFLICT') void ctx.reloadOrg();
      },
    },
  );
  return (
    <Card
      title="Default budget for developers"
      description="What each developer's keys may spend together, per period (UTC), unless you set a budget of their own above. Owners and admins have none unless set."
    >
      <form
        class="budget-default-form"
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <SpendLimitFields amountLabel="Default budget ($)" amount={amount()} period={period()} onAmount={setAmount} onPeriod={setPeriod} error={error()} disabled={!canEdit()} testId="developer-budget" hint="Empty: developers have no default budget." />
        <Show when={canEdit()} fallback={<p class="role-note">Your role ({ROLE_LABELS[ctx.role() ?? 'developer']}) can view the default budget. Owners and admins change it.</p>}>
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={saving()} disabled={!dirty()}>
              Save default
            </Button>
            <Show when={dirty()}>
              <Button onClick={reset}>Discard</Button>
            </Show>
          </div>
        </Show>
      </form>
    </Card>
  );
}

/** Owners and admins set (or remove) a member's budget: what their keys together may spend per period. */
function BudgetDialog(props: { member: Member; onClose: (changed: boolean) => void }) {
  const ctx = useOrg();
  const id = createUniqueId();
  let dialog!: HTMLDialogElement;
  const current = props.member.budgetSource === 'member' ? props.member.budget : null;
  const inherited = props.member.budgetSource === 'developerDefault' ? props.member.budget : null;
  const [amount, setAmount] = createSignal(current?.amount ?? '');
  const [period, setPeriod] = createSignal<LimitPeriod>(current?.period ?? 'month');
  const [error, setError] = createSignal<string | undefined>();
  const [pending, setPending] = createSignal(false);
  let opener: Element | null = null;
  onMount(() => (opener = openDialog(dialog)));
  const close = (changed: boolean) => {
    if (dialog.open) dialog.close();
    props.onClose(changed);
    restoreFocus(opener);
  };
  const save = async (remove: boolean) => {
    if (pending()) return;
    const parsed = remove ? ({ ok: true, value: null } as const) : parseAmount(amount(), { max: 1_000_000 });
    if (!parsed.ok) return setError(parsed.error);
    if (!remove && parsed.value === null) return setError('Enter an amount, or remove the budget');
    setPending(true);
    setError(undefined);
    try {
      await api.team.setBudget.mutate({ orgId: ctx.orgId(), userId: props.member.userId, amount: parsed.value, period: period() });
      toast.success(parsed.value === null ? `${props.member.name} has no budget now.` : `Budget of ${props.member.name} saved.`);
      close(true);
    } catch (err) {
      const fields = fieldErrorsOf(err);
      setError(fields.amount ?? fields.period ?? errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return (
    <FormDialog
      ref={(el) => {
        dialog = el;
      }}
      titleId={`${id}-title`}
      testId="budget-dialog"
      pending={pending()}
      onClose={() => close(false)}
      onSubmit={() => void save(false)}
    >
        <h2 id={`${id}-title`}>Budget of {props.member.name}</h2>
        <p>
          What the API keys {props.member.name} created may spend together, per period (UTC). A call that would go over it is refused before it
          costs anything; alerts go out at 50%, 80% and 100%.
        </p>
        <Show when={inherited}>
          {(b) => (
            <p class="notice notice-info">
              Now the developers' default applies: {formatMoney(b().amount)} {PERIOD_SHORT[b().period]}. A budget set here replaces it for {props.member.name}.
            </p>
          )}
        </Show>
        <SpendLimitFields amountLabel="Budget ($)" amount={amount()} period={period()} onAmount={setAmount} onPeriod={setPeriod} error={error()} hint="For example 50 per month." />
        <div class="dialog-actions">
          <Show when={current}>
            <button type="button" class="btn btn-ghost text-danger" disabled={pending()} onClick={() => void save(true)}>
              Remove budget
            </button>
          </Show>
          <button type="button" class="btn btn-secondary" disabled={pending()} onClick={() => close(false)} data-autofocus>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={pending()} aria-busy={pending() ? 'true' : undefined}>
            <Show when={pending()}>
              <span class="spinner" aria-hidden="true" />
            </Show>
            Save budget
          </button>
        </div>
    </FormDialog>
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
