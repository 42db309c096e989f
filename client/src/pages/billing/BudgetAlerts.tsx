/** Budget alerts: "balance below X" and "spend this month above Y"; each notifies once per crossing. */
import { createSignal, For, onCleanup, onMount, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { budgetAlertSetInput } from '../../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../../api.js';
import { useOrg } from '../../state/org-context.js';
import { Badge, Button, Card, createAction, LoadState } from '../../ui/components.js';
import { formatDateTime, formatMoney } from '../../ui/format.js';
import { validate } from '../../ui/forms.js';
import { toast } from '../../ui/toast.js';
import { dollarsForInput, MoneyField } from './common.js';

type AlertList = RouterOutputs['billing']['budgetAlerts']['list'];
type Alert = AlertList['alerts'][number];
type Kind = Alert['kind'];

const KINDS: { kind: Kind; title: string; what: string; currentLabel: string }[] = [
  { kind: 'balance_below', title: 'Balance falls below', what: 'when the credit balance drops below this amount', currentLabel: 'Balance now' },
  { kind: 'monthly_spend_above', title: 'Spend this month exceeds', what: 'when usage this calendar month goes above this amount', currentLabel: 'Spent this month' },
];

/** Usage moves the balance often; the alert list follows at most this often. */
const REFRESH_THROTTLE_MS = 2000;

export function BudgetAlertsCard() {
  const ctx = useOrg();
  const [state, setState] = createStore({ data: null as AlertList | null, error: null as unknown });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;

  const load = async () => {
    try {
      const data = await api.billing.budgetAlerts.list.query({ orgId: ctx.orgId() });
      setState('data', reconcile(data));
      setState('error', null);
    } catch (err) {
      setState('error', err);
    }
  };
  const loadSoon = () => {
    if (timer) return;
    const wait = Math.max(0, last + REFRESH_THROTTLE_MS - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      void load();
    }, wait);
  };
  onMount(() => void load());
  onCleanup(() => clearTimeout(timer));
  ctx.onEvent((e) => {
    if (e.type === 'credits.changed' || e.type === 'budget.alert' || (e.type === 'billing.updated' && e.reason === 'budget_alert')) loadSoon();
  });

  const alertOf = (kind: Kind) => state.data?.alerts.find((a) => a.kind === kind);
  const current = (kind: Kind) => (kind === 'balance_below' ? (ctx.org()?.credits ?? '0') : (state.data?.monthlySpend ?? '0'));

  return (
    <Card
      title="Budget alerts"
      id="budget-alerts"
      description="Owners and the billing email get an email, and everyone viewing billing sees a banner, once per crossing. An alert re-arms when the condition clears."
    >
      <LoadState loaded={!!state.data} error={state.error} retry={() => void load()}>
        <ul class="alert-list">
          <For each={KINDS}>
            {(k) => <AlertRow spec={k} alert={alertOf(k.kind)} current={current(k.kind)} onSaved={(data) => setState('data', reconcile(data))} />}
          </For>
        </ul>
        <Show when={!ctx.can('billing.manage')}>
          <p class="role-note">Only owners can set or clear budget alerts.</p>
        </Show>
      </LoadState>
    </Card>
  );
}

function AlertRow(props: { spec: (typeof KINDS)[number]; alert: Alert | undefined; current: string; onSaved: (data: AlertList) => void }) {
  const ctx = useOrg();
  const [draft, setDraft] = createSignal<string | null>(null);
  const [error, setError] = createSignal<string | undefined>();
  const value = () => draft() ?? (props.alert ? dollarsForInput(props.alert.threshold) : '');

  const [saving, save] = createAction(
    async (threshold: string | null) => {
      const checked = validate(budgetAlertSetInput, { orgId: ctx.orgId(), kind: props.spec.kind, threshold });
      if (!checked.ok) return setError(checked.errors.threshold ?? Object.values(checked.errors)[0]);
      setError(undefined);
      const data = await api.billing.budgetAlerts.set.mutate({ orgId: ctx.orgId(), kind: props.spec.kind, threshold });
      props.onSaved(data);
      setDraft(null);
      const cents = checked.data.threshold;
      toast.success(cents === null ? 'Alert cleared.' : `Alert set: ${props.spec.title.toLowerCase()} ${formatMoney((cents / 100).toFixed(2))}.`);
    },
    { onError: (err) => setError(fieldErrorsOf(err).threshold ?? errorMessage(err)) },
  );

  return (
    <li class="alert-row" classList={{ triggered: !!props.alert?.triggered }} data-testid={`budget-alert-${props.spec.kind}`}>
      <div class="alert-info">
        <p class="cell-title">
          {props.spec.title}{' '}
          <Show when={props.alert?.triggered}>
            <Badge tone="warning">Triggered</Badge>
          </Show>
        </p>
        <p class="muted small">
          {props.spec.currentLabel}: <strong>{formatMoney(props.current)}</strong>
          {' · '}
          <Show when={props.alert} fallback="No alert set">
            {(a) => (
              <>
                Alert at <strong>{formatMoney(a().threshold)}</strong>
                <Show when={a().triggered && a().lastTriggeredAt}> since {formatDateTime(a().lastTriggeredAt)}</Show>
              </>
            )}
          </Show>
        </p>
      </div>
      <Show when={ctx.can('billing.manage')}>
        <form
          class="alert-form"
          onSubmit={(e) => {
            e.preventDefault();
            void save(value());
          }}
          novalidate
        >
          <MoneyField
            label={`Alert ${props.spec.what}`}
            value={value()}
            onInput={(v) => {
              setDraft(v);
              setError(undefined);
            }}
            error={error()}
            placeholder="e.g. 20"
          />
          <div class="form-actions">
            <Button type="submit" size="sm" variant="primary" loading={saving()}>
              {props.alert ? 'Update' : 'Set alert'}
            </Button>
            <Show when={props.alert}>
              <Button size="sm" variant="ghost" disabled={saving()} onClick={() => void save(null)}>
                Clear<span class="sr-only"> alert: {props.spec.title.toLowerCase()}</span>
              </Button>
            </Show>
          </div>
        </form>
      </Show>
    </li>
  );
}

