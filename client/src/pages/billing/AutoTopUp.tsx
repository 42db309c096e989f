/** Auto top-up: settings (owners), and why it is off or what its last attempt did (everyone who sees billing). */
import { createEffect, createSignal, Match, on, Show, Switch } from 'solid-js';
import { createStore } from 'solid-js/store';
import { autoTopUpInput } from '../../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf } from '../../api.js';
import type { BillingOverview } from '../../state/billing.js';
import { useOrg } from '../../state/org-context.js';
import { Badge, Button, Card, createAction } from '../../ui/components.js';
import { formatDateTime, formatMoney } from '../../ui/format.js';
import { validate, type FieldErrors } from '../../ui/forms.js';
import { toast } from '../../ui/toast.js';
import { dollarsForInput, MoneyField } from './common.js';

/** A reason from the payment provider, without its final period, to sit inside our sentence. */
const sentence = (text: string | null | undefined) => (text ?? '').trim().replace(/\.$/, '');

const ATTEMPT_LABELS: Record<string, string> = {
  succeeded: 'succeeded',
  pending: 'in progress',
  failed: 'failed',
  requires_action: 'needed the card holder',
};

interface Draft {
  enabled: boolean;
  threshold: string;
  amount: string;
}

export function AutoTopUpCard(props: { overview: BillingOverview; onBuyCredits: (dollars?: string) => void }) {
  const ctx = useOrg();
  const canManage = () => ctx.can('billing.manage');
  const settings = () => props.overview.autoTopUp;
  const fromServer = (): Draft => ({
    enabled: settings().enabled,
    threshold: dollarsForInput(settings().threshold),
    amount: dollarsForInput(settings().amount),
  });
  const [base, setBase] = createSignal<Draft>(fromServer());
  const [draft, setDraft] = createStore<Draft>(fromServer());
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const dirty = () => draft.enabled !== base().enabled || draft.threshold !== base().threshold || draft.amount !== base().amount;

  // Someone else saved (or auto top-up turned itself off): follow, unless I am editing.
  createEffect(
    on(
      () => JSON.stringify(fromServer()),
      () => {
        const next = fromServer();
        if (!dirty()) setDraft(next);
        setBase(next);
      },
      { defer: true },
    ),
  );

  const hasDefaultMethod = () => props.overview.paymentMethods.some((pm) => pm.isDefault);
  const attempt = () => settings().lastAttempt;

  const [saving, save] = createAction(
    async () => {
      const checked = validate(autoTopUpInput, { orgId: ctx.orgId(), enabled: draft.enabled, threshold: draft.threshold, amount: draft.amount });
      if (!checked.ok) return setErrors(checked.errors);
      setErrors({});
      await api.billing.updateAutoTopUp.mutate({ orgId: ctx.orgId(), enabled: draft.enabled, threshold: draft.threshold, amount: draft.amount });
      setBase({ ...draft });
      toast.success(draft.enabled ? 'Auto top-up is on.' : 'Auto top-up is off.');
      void ctx.billing.refresh();
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        setErrors(Object.keys(fields).length ? fields : { form: errorMessage(err) });
      },
    },
  );

  return (
    <Card
      title="Auto top-up"
      id="auto-top-up"
      description="Buy credits automatically with the default payment method when the balance runs low."
      actions={<Badge tone={settings().enabled ? 'success' : 'neutral'}>{settings().enabled ? 'On' : 'Off'}</Badge>}
    >
      <Show when={!settings().enabled && settings().disabledReason}>
        <div class="callout callout-danger" data-testid="auto-top-up-disabled">
          <div class="callout-body">
            <p class="callout-title">Needs attention</p>
            <p>{settings().disabledReason}</p>
          </div>
        </div>
      </Show>
      <Show when={attempt()}>
        {(a) => (
          <Switch>
            <Match when={settings().enabled && a().status === 'requires_action'}>
              <div class="callout callout-warning" data-testid="auto-top-up-attempt">
                <div class="callout-body">
                  <p class="callout-title">Your bank needs you to confirm a payment</p>
                  <p>
                    The {formatMoney(a().amount)} top-up on {formatDateTime(a().at)} needs the card holder's confirmation, so it did not go through
                    {a().failureReason ? ` (${sentence(a().failureReason)})` : ''}. Buying credits here confirms the card; automatic tries resume{' '}
                    {a().nextRetryAt ? formatDateTime(a().nextRetryAt) : 'later'}.
                  </p>
                  <Show when={canManage()} fallback={<p class="muted">An owner needs to buy credits to confirm it.</p>}>
                    <div class="form-actions">
                      <Button variant="primary" size="sm" onClick={() => props.onBuyCredits(dollarsForInput(a().amount))}>
                        Add credits now
                      </Button>
                    </div>
                  </Show>
                </div>
              </div>
            </Match>
            <Match when={settings().enabled && a().status === 'failed'}>
              <div class="callout callout-danger" data-testid="auto-top-up-attempt">
                <div class="callout-body">
                  <p class="callout-title">The last top-up failed</p>
                  <p>
                    {formatMoney(a().amount)} on {formatDateTime(a().at)}: {sentence(a().failureReason) || 'the payment was declined'}.
                    <Show when={settings().enabled && a().nextRetryAt}> Next try {formatDateTime(a().nextRetryAt)}.</Show>
                  </p>
                </div>
              </div>
            </Match>
            <Match when={true}>
              <p class="muted small" data-testid="auto-top-up-attempt">
                Last top-up: {formatMoney(a().amount)} on {formatDateTime(a().at)} ·{' '}
                {ATTEMPT_LABELS[a().status] ?? a().status}
                <Show when={a().status !== 'succeeded' && a().failureReason}>: {sentence(a().failureReason)}</Show>
              </p>
            </Match>
          </Switch>
        )}
      </Show>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
        novalidate
      >
        <fieldset class="plain-fieldset" disabled={!canManage()}>
          <legend class="sr-only">Auto top-up settings</legend>
          <label class="checkbox switch-row">
            <input
              type="checkbox"
              checked={draft.enabled}
              disabled={!draft.enabled && !hasDefaultMethod()}
              onChange={(e) => setDraft('enabled', e.currentTarget.checked)}
            />
            <span>Top up automatically</span>
          </label>
          <Show when={!hasDefaultMethod() && canManage()}>
            <p class="field-hint auto-top-up-hint">Add a payment method first: auto top-up charges the default payment method.</p>
          </Show>
          <div class="form-row">
            <MoneyField
              label="When the balance falls below"
              value={draft.threshold}
              onInput={(v) => setDraft('threshold', v)}
              error={errors().threshold}
              hint="Default $10."
            />
            <MoneyField
              label="Add this amount"
              value={draft.amount}
              onInput={(v) => setDraft('amount', v)}
              error={errors().amount}
              hint="At least $10. Default $50."
            />
          </div>
        </fieldset>
        <Show when={errors().form}>
          <p class="form-error" role="alert">
            {errors().form}
          </p>
        </Show>
        <Show when={canManage()} fallback={<p class="role-note">Only owners can change auto top-up.</p>}>
          <div class="form-actions">
            <Button type="submit" variant="primary" loading={saving()} disabled={!dirty()}>
              Save auto top-up
            </Button>
            <Show when={dirty()}>
              <Button
                onClick={() => {
                  setDraft(base());
                  setErrors({});
                }}
              >
                Discard
              </Button>
            </Show>
          </div>
        </Show>
      </form>
    </Card>
  );
}
