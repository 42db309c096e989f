/**
 * Transactions: the credit ledger, newest first, paged by cursor, filtered by type, exportable as
 * CSV (grouped or every entry). By default usage is one row per day (per hour today) with its
 * request count and cost, and every other entry on its own row; "Every entry" shows the ledger's
 * rows. New entries appear live. Owners can refund a purchase.
 */
import { createEffect, createSignal, For, on, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { refundInput } from '../../../../shared/schemas.js';
import { api, capitalize, type RouterOutputs } from '../../api.js';
import { createCursorList, createThrottle } from '../../state/cursor-list.js';
import { useOrg } from '../../state/org-context.js';
import { confirmWithInput } from '../../ui/confirm.js';
import { Badge, Button, Card, createAction, EmptyState, LoadMoreFooter, LoadState, SelectField } from '../../ui/components.js';
import { formatDate, formatDateTime } from '../../ui/format.js';
import { formatCount } from '../../ui/usage-format.js';
import { validate } from '../../ui/forms.js';
import { toast } from '../../ui/toast.js';
import { BillingHeader, formatAmount, NoBillingAccess, TYPE_LABELS, TYPE_TONES, type LedgerType, type Transaction } from './common.js';
import '../records.css';

type Grouped = RouterOutputs['billing']['transactionsGrouped']['items'][number];
type UsagePeriod = Extract<Grouped, { kind: 'usage' }>;
type View = 'grouped' | 'ledger';

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

/** The reader's time zone: usage is grouped by their days. */
const TIME_ZONE = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
})();

/** A grouped row's place in the order ("<µs>.<rank>.<id>", newest first): true when `a` comes after `b`. */
function after(a: string, b: string): boolean {
  const [x, y] = [a, b].map((p) => p.split('.').map((n) => BigInt(n)));
  for (let i = 0; i < 3; i++) if (x![i]! !== y![i]!) return x![i]! < y![i]!;
  return false;
}

/** The grouped history, page by page, with the newest page merged live over what is shown. */
function createGroupedList(opts: { key: () => unknown; fetch: (cursor: string | null) => Promise<{ items: Grouped[]; nextCursor: string | null }> }) {
  const [state, setState] = createStore({ items: [] as Grouped[], nextCursor: null as string | null, loaded: false, error: null as unknown });
  return {
    state,
    reset: () => setState({ items: [], nextCursor: null, loaded: false, error: null }),
    async loadFirst() {
      const key = opts.key();
      try {
        const page = await opts.fetch(null);
        if (key !== opts.key()) return;
        setState('items', reconcile(page.items, { key: 'id' }));
        setState({ nextCursor: page.nextCursor, loaded: true, error: null });
      } catch (err) {
        setState('error', err);
      }
    },
    async loadMore() {
      if (!state.nextCursor) return;
      const key = opts.key();
      const page = await opts.fetch(state.nextCursor);
      if (key !== opts.key()) return;
      const shown = new Set(state.items.map((i) => i.id));
      setState('items', (items) => [...items, ...page.items.filter((i) => !shown.has(i.id))]);
      setState('nextCursor', page.nextCursor);
    },
    /** Returns the ids that were not shown before (a usage period that grew keeps its id). */
    async mergeNewest(): Promise<string[]> {
      const key = opts.key();
      const page = await opts.fetch(null).catch(() => null);
      if (!page || key !== opts.key() || !state.loaded) return [];
      const shown = new Set(state.items.map((i) => i.id));
      const last = page.items[page.items.length - 1];
      const fetched = new Set(page.items.map((i) => i.id));
      const older = last && page.nextCursor ? state.items.filter((i) => !fetched.has(i.id) && after(i.position, last.position)) : [];
      setState('items', reconcile([...page.items, ...older], { key: 'id' }));
      if (!older.length) setState('nextCursor', page.nextCursor);
      return page.items.filter((i) => !shown.has(i.id)).map((i) => i.id);
    },
  };
}

function TransactionsContent() {
  const ctx = useOrg();
  const [filter, setFilter] = createSignal<Filter>('');
  const [view, setView] = createSignal<View>('grouped');
  const listKey = () => `${view()}:${filter()}`;
  /** Ids that arrived live, highlighted for a moment. */
  const [fresh, setFresh] = createSignal<ReadonlySet<string>>(new Set());
  const query = () => ({ orgId: ctx.orgId(), limit: PAGE_SIZE, ...(filter() ? { type: filter() as LedgerType } : {}) });

  const list = createCursorList<Transaction>({ key: listKey, fetch: (cursor) => api.billing.transactions.query({ ...query(), ...(cursor ? { cursor } : {}) }) });
  const grouped = createGroupedList({ key: listKey, fetch: (cursor) => api.billing.transactionsGrouped.query({ ...query(), timeZone: TIME_ZONE, ...(cursor ? { cursor } : {}) }) });
  const current = () => (view() === 'grouped' ? grouped : list);
  const state = () => current().state;

  /** Live: the newest page merged over what is shown; what arrived is highlighted for a moment. */
  const mergeArrived = async () => {
    const arrived = await current().mergeNewest();
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
    on(listKey, () => {
      list.reset();
      grouped.reset();
      void current().loadFirst();
    }),
  );

  const [loadingMore, loadMore] = createAction(() => current().loadMore());

  const [exporting, exportCsv] = createAction(async (csvView: View) => {
    const { filename, csv } = await api.billing.transactionsCsv.query({
      orgId: ctx.orgId(),
      ...(filter() ? { type: filter() as LedgerType } : {}),
      ...(csvView === 'grouped' ? { view: 'grouped' as const, timeZone: TIME_ZONE } : {}),
    });
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
          <div class="txn-toolbar-actions">
            <div class="txn-view-toggle" role="group" aria-label="Show usage">
              <button type="button" aria-pressed={view() === 'grouped'} onClick={() => setView('grouped')}>
                Usage by day
              </button>
              <button type="button" aria-pressed={view() === 'ledger'} onClick={() => setView('ledger')}>
                Every entry
              </button>
            </div>
            <Button loading={exporting()} onClick={() => void exportCsv('grouped')}>
              CSV by day
            </Button>
            <Button loading={exporting()} onClick={() => void exportCsv('ledger')}>
              CSV of every entry
            </Button>
          </div>
        </div>
        <LoadState loaded={state().loaded} error={state().error} retry={() => void current().loadFirst()}>
          <Show
            when={state().items.length > 0}
            fallback={<EmptyState title={filter() ? `No ${TYPE_LABELS[filter() as LedgerType].toLowerCase()} transactions` : 'No transactions yet'} />}
          >
            <div class="table-wrap">
              <table class="table table-stack txn-table" data-testid="transactions" data-view={view()}>
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
                  <Show
                    when={view() === 'grouped'}
                    fallback={<For each={list.state.items}>{(t) => <TransactionRow txn={t} fresh={fresh().has(t.id)} onChanged={mergeSoon} />}</For>}
                  >
                    <For each={grouped.state.items}>
                      {(t) => (t.kind === 'usage' ? <UsageRow period={t} fresh={fresh().has(t.id)} /> : <TransactionRow txn={t} fresh={fresh().has(t.id)} onChanged={mergeSoon} />)}
                    </For>
                  </Show>
                </tbody>
              </table>
            </div>
            <LoadMoreFooter more={!!state().nextCursor} loading={loadingMore()} onLoad={() => void loadMore()} />
          </Show>
        </LoadState>
      </Card>
    </div>
  );
}

const hourFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });

/** "Dec 1, 2026" for a day; "Today, 2:00 PM – 3:00 PM" for an hour of today. */
function periodLabel(p: UsagePeriod): string {
  if (p.period === 'day') return formatDate(p.from);
  return `Today, ${hourFormat.format(new Date(p.from))} – ${hourFormat.format(new Date(p.to))}`;
}

function UsageRow(props: { period: UsagePeriod; fresh: boolean }) {
  const p = () => props.period;
  return (
    <tr classList={{ 'row-new': props.fresh, 'txn-usage-row': true }} data-testid={`usage-${p().period}`}>
      <td class="nowrap">{periodLabel(p())}</td>
      <td data-label="Type">
        <Badge tone={TYPE_TONES.usage}>{TYPE_LABELS.usage}</Badge>
      </td>
      <td data-label="Description" class="txn-description">
        <div>
          {formatCount(p().requests)} {p().requests === 1 ? 'request' : 'requests'}
          <span class="muted small txn-actor">
            {p().period === 'day' ? 'that day' : 'that hour'} · {p().entries} {p().entries === 1 ? 'charge' : 'charges'}
          </span>
        </div>
      </td>
      <td data-label="Amount" class="num nowrap" classList={{ 'amount-out': p().amount.startsWith('-') && !/^-?0+(\.0+)?$/.test(p().amount) }}>
        {formatAmount(p().amount, { signed: true })}
      </td>
      <td data-label="Balance after" class="num nowrap">
        {formatAmount(p().creditsAfter)}
      </td>
      <td data-label="Status">
        <span class="muted">Completed</span>
      </td>
      <td class="row-actions" />
    </tr>
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
