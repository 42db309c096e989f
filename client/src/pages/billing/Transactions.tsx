/**
 * Transactions: the credit ledger, newest first, paged by cursor, filtered by type, exportable as
 * CSV. New entries appear live. Owners can credit back a usage charge or refund a purchase.
 */
import { createEffect, createSignal, For, on, Show } from 'solid-js';
import { refundInput } from '../../../../shared/schemas.js';
import { api, capitalize } from '../../api.js';
import { createCursorList, createThrottle } from '../../state/cursor-list.js';
import { useOrg } from '../../state/org-context.js';
import { confirmWithInput } from '../../ui/confirm.js';
import { Badge, Button, Card, createAction, EmptyState, LoadMoreFooter, LoadState, SelectField } from '../../ui/components.js';
import { formatDateTime } from '../../ui/format.js';
import { validate } from '../../ui/forms.js';
import { toast } from '../../ui/toast.js';
import { BillingHeader, formatAmount, NoBillingAccess, TYPE_LABELS, TYPE_TONES, type LedgerType, type Transaction } from './common.js';

type Filter = LedgerType | '';
const FILTERS: { value: Filter; label: string }[] = [
  { value: '', label: 'All types' },
  ...(Object.keys(TYPE_LABELS) as LedgerType[]).map((t) => ({ value: t, label: TYPE_LABELS[t] })),
];
const PAGE_SIZE = 50;
const LIVE_THROTTLE_MS = 1500;

export function TransactionsPage() {
  const ctx = useOrg();
  return (
    <Show when={ctx.can('billing.view')} fallback={<NoBillingAccess title="Transactions" />}>
      <TransactionsContent />
    </Show>
  );
}

function TransactionsContent() {
  const ctx = useOrg();
  const [filter, setFilter] = createSignal<Filter>('');
  /** Ids that arrived live, highlighted for a moment. */
  const [fresh, setFresh] = createSignal<ReadonlySet<string>>(new Set());
  const query = () => ({ orgId: ctx.orgId(), limit: PAGE_SIZE, ...(filter() ? { type: filter() as LedgerType } : {}) });

  const list = createCursorList<Transaction>({ key: filter, fetch: (cursor) => api.billing.transactions.query({ ...query(), ...(cursor ? { cursor } : {}) }) });
  const { state, loadFirst } = list;

  /** Live: the newest page merged over what is shown; what arrived is highlighted for a moment. */
  const mergeArrived = async () => {
    const arrived = await list.mergeNewest();
    if (arrived.length) {
      setFresh(new Set([...fresh(), ...arrived]));
      setTimeout(() => setFresh((s) => new Set([...s].filter((id) => !arrived.includes(id)))), 4000);
    }
  };
  const mergeSoon = createThrottle(() => void mergeArrived(), LIVE_THROTTLE_MS);
  ctx.onEvent((e) => {
    if (e.type === 'credits.changed' || (e.type === 'billing.updated' && (e.reason === 'payment_failed' || e.reason === 'invoice'))) mergeSoon();
  });

  createEffect(
    on(filter, () => {
      list.reset();
      void loadFirst();
    }),
  );

  const [loadingMore, loadMore] = createAction(() => list.loadMore());

  const [exporting, exportCsv] = createAction(async () => {
    const { filename, csv } = await api.billing.transactionsCsv.query({ orgId: ctx.orgId(), ...(filter() ? { type: filter() as LedgerType } : {}) });
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    toast.success(`Downloaded ${filename}.`);
  });

  return (
    <div class="page">
      <BillingHeader title="Transactions" description="Every change of the credit balance: purchases, usage, refunds, top-ups and adjustments." />
      <Card>
        <div class="toolbar">
          <div class="toolbar-filter">
            <SelectField label="Type" value={filter()} options={FILTERS} onChange={setFilter} />
          </div>
          <Button loading={exporting()} onClick={() => void exportCsv()}>
            Export CSV
          </Button>
        </div>
        <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
          <Show
            when={state.items.length > 0}
            fallback={<EmptyState title={filter() ? `No ${TYPE_LABELS[filter() as LedgerType].toLowerCase()} transactions` : 'No transactions yet'} />}
          >
            <div class="table-wrap">
              <table class="table table-stack txn-table" data-testid="transactions">
                <thead>
                  <tr>
                    <th scope="col">Date</th>
                    <th scope="col">Type</th>
                    <th scope="col">Description</th>
                    <th scope="col" class="num">Amount</th>
                    <th scope="col" class="num">Balance after</th>
                    <th scope="col">Status</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>{(t) => <TransactionRow txn={t} fresh={fresh().has(t.id)} onChanged={mergeSoon} />}</For>
                </tbody>
              </table>
            </div>
            <LoadMoreFooter more={!!state.nextCursor} loading={loadingMore()} onLoad={() => void loadMore()} />
          </Show>
        </LoadState>
      </Card>
    </div>
  );
}

function TransactionRow(props: { txn: Transaction; fresh: boolean; onChanged: () => void }) {
  const ctx = useOrg();
  const t = () => props.txn;
  const moved = () => t().status === 'completed';
  // A zero amount (a Pro charge paid by card) is neither money in nor money out: no green or red.
  const zero = () => /^[-+]?0+(\.0+)?$/.test(t().amount);
  // Usage is credited back by support (npm run admin -- billing:credit-back), not from here; the
  // server says which purchases can still be refunded (within 14 days, not refunded yet).
  const refundable = () => ctx.can('billing.manage') && moved() && t().refundable === true;

  const refund = async () => {
    if (!refundable()) return;
    const amount = formatAmount(t().amount.replace(/^-/, ''));
    const done = await confirmWithInput({
      title: `Refund this ${amount} purchase?`,
      body: `The unspent part is refunded to the original payment method and the same credits leave the balance. Possible within 14 days, while at most 10% of the purchase is spent (usage still being recorded counts).`,
      confirmLabel: 'Refund purchase',
      danger: true,
      input: { label: 'Reason', placeholder: 'e.g. Bought the wrong amount' },
      action: async (reason) => {
        const checked = validate(refundInput, { orgId: ctx.orgId(), transactionId: t().id, reason });
        if (!checked.ok) throw new Error(Object.values(checked.errors)[0]);
        await api.billing.refund.mutate(checked.data);
      },
    });
    if (done) {
      toast.success('Purchase refunded.');
      props.onChanged();
    }
  };

  return (
    <tr classList={{ 'row-new': props.fresh, 'row-void': !moved() }} data-testid={`txn-${t().id}`}>
      <td class="nowrap">{formatDateTime(t().createdAt)}</td>
      <td data-label="Type">
        <Badge tone={TYPE_TONES[t().type]}>{TYPE_LABELS[t().type] ?? t().type}</Badge>
      </td>
      <td data-label="Description" class="txn-description">
        <div>
          {t().description}
          <Show when={t().actor}>
            <span class="muted small txn-actor">by {t().actor}</span>
          </Show>
        </div>
      </td>
      <td data-label="Amount" class="num nowrap" classList={{ 'amount-in': moved() && !zero() && !t().amount.startsWith('-'), 'amount-out': moved() && !zero() && t().amount.startsWith('-') }}>
        <span title={moved() ? undefined : 'Did not change the balance'}>{formatAmount(t().amount, { signed: true })}</span>
      </td>
      <td data-label="Balance after" class="num nowrap">
        {formatAmount(t().creditsAfter)}
      </td>
      <td data-label="Status">
        <Show when={t().status !== 'completed'} fallback={<span class="muted">Completed</span>}>
          <Badge tone={t().status === 'failed' ? 'danger' : 'warning'}>{capitalize(t().status)}</Badge>
        </Show>
      </td>
      <td class="row-actions">
        <Show when={refundable()}>
          <Button size="sm" variant="ghost" onClick={() => void refund()}>
            Refund
            <span class="sr-only"> transaction {t().id}</span>
          </Button>
        </Show>
      </td>
    </tr>
  );
}
