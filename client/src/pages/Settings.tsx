/**
 * Settings: name and billing email with optimistic concurrency (version), data retention (owners),
 * and deletion. When someone else saves while you edit, you see what they changed and choose.
 */
import { createEffect, createResource, createSignal, For, on, Show } from 'solid-js';
import { createStore } from 'solid-js/store';
import { PLANS, type PlanId, type RetentionLevel } from '../../../shared/plans.js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { orgUpdateInput } from '../../../shared/schemas.js';
import { api, errorCode, errorMessage, fieldErrorsOf, isApiError } from '../api.js';
import { useOrg, type Organization } from '../state/org-context.js';
import { Button, Card, createAction, PageHeader, TextField } from '../ui/components.js';
import { validate, type FieldErrors } from '../ui/forms.js';
import { showNotice } from '../ui/notice.js';
import { toast } from '../ui/toast.js';
import { formatDate } from '../ui/format.js';
import { formatAmount } from './billing/common.js';
import { SpendCaps } from './SpendCaps.js';

interface Snapshot {
  version: number;
  name: string;
  billingEmail: string | null;
  retentionLevel: RetentionLevel;
}

const snapshot = (o: Organization): Snapshot => ({ version: o.version, name: o.name, billingEmail: o.billingEmail, retentionLevel: o.retentionLevel });

type EditableField = 'name' | 'billingEmail';
const EDITABLE: EditableField[] = ['name', 'billingEmail'];

const FIELD_LABELS: Record<EditableField | 'retentionLevel', string> = {
  name: 'Name',
  billingEmail: 'Billing email',
  retentionLevel: 'Data retention',
};

export function SettingsPage() {
  const ctx = useOrg();
  return (
    <div class="page">
      <PageHeader title="Settings" description={`Settings of ${ctx.org()?.name ?? 'this organization'}${/[.!?]$/.test(ctx.org()?.name ?? '') ? '' : '.'}`} />
      <GeneralSettings />
      <RetentionSettings />
      <SpendCaps />
      <Show when={ctx.can('org.delete')}>
        <DangerZone />
      </Show>
    </div>
  );
}

function GeneralSettings() {
  const ctx = useOrg();
  const canEdit = () => ctx.can('org.rename');
  const [base, setBase] = createSignal<Snapshot>(snapshot(ctx.org()!));
  const [draft, setDraft] = createStore({ name: base().name, billingEmail: base().billingEmail ?? '' });
  const [errors, setErrors] = createSignal<FieldErrors>({});
  /** Someone else's saved state, when it differs from what this form started from. */
  const [conflict, setConflict] = createSignal<{ current: Snapshot; via: 'live' | 'save' } | null>(null);

  const dirty = () => draft.name !== base().name || (draft.billingEmail || null) !== (base().billingEmail || null);

  const loadSnapshot = (s: Snapshot) => {
    setBase(s);
    setDraft({ name: s.name, billingEmail: s.billingEmail ?? '' });
    setConflict(null);
    setErrors({});
  };

  const [saving, save] = createAction(
    async () => {
      const checked = validate(orgUpdateInput, {
        orgId: ctx.orgId(),
        version: base().version,
        name: draft.name,
        billingEmail: draft.billingEmail.trim() ? draft.billingEmail : null,
      });
      if (!checked.ok) return setErrors(checked.errors);
      setErrors({});
      const { orgId, version, name, billingEmail } = checked.data;
      const updated = await api.organization.update.mutate({ orgId, version, name, billingEmail });
      loadSnapshot(snapshot(updated));
      ctx.setOrg(updated);
      toast.success('Settings saved.');
    },
    {
      onError: (err) => {
        if (errorCode(err) === 'CONFLICT' && isApiError(err) && err.data?.current) {
          const current = err.data.current as Organization;
          setConflict({ current: snapshot(current), via: 'save' });
          return;
        }
        const fields = fieldErrorsOf(err);
        if (Object.keys(fields).length) setErrors(fields);
        else toast.error(errorMessage(err));
      },
    },
  );

  /** Whether I changed this field from the version the form started from. */
  const edited = (k: EditableField) =>
    k === 'name' ? draft.name !== base().name : (draft.billingEmail.trim() || null) !== (base().billingEmail || null);

  // Live: another member saved. Fields I did not touch take their values and my edits stay; only
  // when they changed a field I am editing do I see both and choose.
  createEffect(
    on(
      () => ctx.org()?.version,
      (version) => {
        const org = ctx.org();
        // While my own save is in flight, its own event may arrive first; the save's result settles it.
        if (!org || version === undefined || version === base().version || saving()) return;
        const current = snapshot(org);
        const theirs = EDITABLE.filter((k) => (current[k] ?? null) !== (base()[k] ?? null));
        if (theirs.some(edited)) {
          setConflict({ current, via: 'live' });
          return;
        }
        const wasDirty = dirty();
        const name = edited('name') ? draft.name : current.name;
        const billingEmail = edited('billingEmail') ? draft.billingEmail : (current.billingEmail ?? '');
        setBase(current);
        setDraft({ name, billingEmail });
        if (wasDirty && theirs.length > 0) {
          toast.info(`A teammate changed ${theirs.map((k) => FIELD_LABELS[k].toLowerCase()).join(' and ')}; your edits are kept.`);
        }
      },
      { defer: true },
    ),
  );

  const changedFields = () => {
    const c = conflict();
    if (!c) return [];
    return (['name', 'billingEmail', 'retentionLevel'] as const).filter((k) => (c.current[k] ?? null) !== (base()[k] ?? null));
  };

  return (
    <Card title="General" description="How this organization appears, and where invoices and alerts go.">
      <Show when={conflict()}>
        {(c) => (
          <div class="conflict" role="alert" data-testid="settings-conflict">
            <p class="conflict-title">
              {c().via === 'save'
                ? 'Not saved: someone else changed these settings while you were editing.'
                : 'Someone else just changed these settings while you were editing.'}
            </p>
            <Show when={changedFields().length > 0} fallback={<p class="muted">Their change did not touch these fields.</p>}>
              <div class="table-wrap">
                <table class="table table-compact">
                  <thead>
                    <tr>
                      <th scope="col">Field</th>
                      <th scope="col">Was</th>
                      <th scope="col">Now</th>
                      <th scope="col">Your edit</th>
                    </tr>
                  </thead>
                  <tbody>
                    <For each={changedFields()}>
                      {(k) => (
                        <tr>
                          <th scope="row">{FIELD_LABELS[k]}</th>
                          <td>{String(base()[k] ?? '—')}</td>
                          <td>
                            <strong>{String(c().current[k] ?? '—')}</strong>
                          </td>
                          <td>
                            {k !== 'retentionLevel' && edited(k) ? (
                              String((k === 'name' ? draft.name : draft.billingEmail) || '—')
                            ) : (
                              <span class="muted">not edited</span>
                            )}
                          </td>
                        </tr>
                      )}
                    </For>
                  </tbody>
                </table>
              </div>
            </Show>
            <div class="form-actions">
              <Button variant="primary" onClick={() => loadSnapshot(c().current)}>
                Load their changes
              </Button>
              <Button
                onClick={() => {
                  // Reapply: keep my edits on top of the current version.
                  const { current, via } = c();
                  setBase(current);
                  setConflict(null);
                  if (via === 'save') void save();
                }}
              >
                {c().via === 'save' ? 'Save mine over theirs' : 'Keep my edits'}
              </Button>
            </div>
          </div>
        )}
      </Show>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
        novalidate
      >
        <TextField label="Organization name" value={draft.name} onInput={(v) => setDraft('name', v)} error={errors().name} disabled={!canEdit()} />
        <TextField
          label="Billing email"
          type="email"
          value={draft.billingEmail}
          onInput={(v) => setDraft('billingEmail', v)}
          error={errors().billingEmail}
          disabled={!canEdit()}
          hint="Invoices, receipts and budget alerts are sent here."
        />
        <Show
          when={canEdit()}
          fallback={<p class="role-note">Your role ({ROLE_LABELS[ctx.role() ?? 'developer']}) can view these settings. Owners and admins change them.</p>}
        >
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={saving()} disabled={!dirty()}>
              Save changes
            </Button>
            <Show when={dirty()}>
              <Button onClick={() => loadSnapshot(snapshot(ctx.org()!))}>Discard</Button>
            </Show>
          </div>
        </Show>
      </form>
    </Card>
  );
}

function RetentionSettings() {
  const ctx = useOrg();
  const canEdit = () => ctx.can('org.retention');
  const [choice, setChoice] = createSignal<RetentionLevel>(ctx.org()!.retentionLevel);
  createEffect(on(() => ctx.org()?.retentionLevel, (level) => level && setChoice(level), { defer: true }));
  const plan = () => PLANS[(ctx.org()?.plan ?? 'free') as PlanId] ?? PLANS.free;
  const days = (level: RetentionLevel) => {
    const d = plan().retentionDays[level];
    return d === null ? 'a custom period' : `${d} days`;
  };
  const [saving, save] = createAction(
    async () => {
      const updated = await api.organization.update.mutate({ orgId: ctx.orgId(), version: ctx.org()!.version, retentionLevel: choice() });
      ctx.setOrg(updated);
      toast.success('Data retention updated.');
    },
    {
      onError: (err) => {
        toast.error(errorMessage(err));
        if (errorCode(err) === 'CONFLICT') void ctx.reloadOrg();
      },
    },
  );
  const options: { value: RetentionLevel; label: string; detail: () => string }[] = [
    { value: 'none', label: 'Metadata only', detail: () => `Keeps request metadata (model, tokens, cost, latency), never prompts or responses, for ${days('none')}.` },
    { value: 'retain', label: 'Retain request bodies', detail: () => `Also keeps prompts and responses, for ${days('retain')} on the ${plan().name} plan.` },
  ];
  return (
    <Card title="Data retention" description="How long request logs are stored, and what they contain.">
      <fieldset class="radio-group" disabled={!canEdit()}>
        <legend class="sr-only">Retention level</legend>
        <For each={options}>
          {(o) => (
            <label class="radio-card" classList={{ selected: choice() === o.value }}>
              <input type="radio" name="retention" value={o.value} checked={choice() === o.value} onChange={() => setChoice(o.value)} />
              <span>
                <span class="radio-title">{o.label}</span>
                <span class="radio-detail">{o.detail()}</span>
              </span>
            </label>
          )}
        </For>
      </fieldset>
      <Show when={canEdit()} fallback={<p class="role-note">Only owners change the retention level.</p>}>
        <div class="form-actions">
          <Button variant="primary" loading={saving()} disabled={choice() === ctx.org()?.retentionLevel} onClick={() => void save()}>
            Save retention
          </Button>
        </div>
      </Show>
    </Card>
  );
}

function DangerZone() {
  const ctx = useOrg();
  const [typed, setTyped] = createSignal('');
  const [error, setError] = createSignal<string | undefined>();
  const matches = () => typed().trim() === ctx.org()?.name;
  // What the deletion does to the money, read from the server (credits forfeited, subscription canceled).
  const [preview, { refetch: refetchPreview }] = createResource(
    () => ctx.orgId(),
    (orgId) => api.organization.deletionPreview.query({ orgId }),
  );
  // Reading an errored resource throws: read it only when it did not fail.
  const previewed = () => (preview.error ? undefined : preview());
  const forfeits = () => {
    const credits = previewed()?.forfeitedCredits;
    return credits !== undefined && credits !== '0.00' ? credits : null;
  };
  const [deleting, remove] = createAction(
    async () => {
      const name = ctx.org()!.name;
      const result = await api.organization.delete.mutate({ orgId: ctx.orgId(), confirmName: typed() });
      const canceled = result.subscription?.canceled ? ' Its Pro subscription was canceled.' : '';
      const message = `${name} was deleted.${canceled}`;
      // The live "organization.deleted" event can arrive before this response and move us away
      // with a shorter notice (depart then does nothing): the full notice replaces it.
      showNotice(message);
      void ctx.depart(message);
    },
    { onError: (err) => setError(errorMessage(err)) },
  );
  return (
    <Card title="Danger zone" class="card-danger" description="Deleting removes its projects, API keys, members, invitations and history. It cannot be undone.">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (matches()) void remove();
        }}
        novalidate
      >
        <ul class="deletion-consequences" data-testid="deletion-preview">
          <Show when={preview.loading}>
            <li class="muted" role="status">Checking the credits and subscription this deletion affects…</li>
          </Show>
          <Show when={preview.error}>
            <li class="text-danger" role="alert">
              Could not check the credits and subscription this deletion affects: {errorMessage(preview.error)}{' '}
              <Button size="sm" onClick={() => void refetchPreview()}>
                Try again
              </Button>
            </li>
          </Show>
          <Show when={forfeits()}>
            {(credits) => (
              <li>
                <strong>{formatAmount(credits())} of credits will be forfeited</strong> (not refunded). Refund recent purchases from Billing first if you need to.
              </li>
            )}
          </Show>
          <Show when={previewed()?.subscription}>
            {(sub) => (
              <li>
                <strong>The Pro subscription will be canceled now</strong> and will not renew{sub().periodEnd ? ` (it was paid until ${formatDate(sub().periodEnd)})` : ''}.
              </li>
            )}
          </Show>
          <li>The billing records (transactions, payments, refunds) and the audit trail are kept by the operator for accounting.</li>
        </ul>
        <TextField
          label={`Type “${ctx.org()?.name}” to confirm`}
          value={typed()}
          onInput={(v) => {
            setTyped(v);
            setError(undefined);
          }}
          error={error()}
          autocomplete="off"
        />
        <div class="form-actions">
          <Button type="submit" variant="danger" disabled={!matches() || preview.loading} loading={deleting()}>
            Delete organization
          </Button>
        </div>
      </form>
    </Card>
  );
}
