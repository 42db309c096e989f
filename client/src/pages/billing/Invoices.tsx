/** The organization's invoices (Stripe's, or the test-payment provider's): view online or download the PDF. */
import { createSignal, For, onMount, Show } from 'solid-js';
import { api, errorMessage, type RouterOutputs } from '../../api.js';
import { useOrg } from '../../state/org-context.js';
import { Badge, Button, Card, EmptyState, ErrorState, Loading } from '../../ui/components.js';
import { formatDate, formatMoney } from '../../ui/format.js';

type Invoice = RouterOutputs['billing']['invoices']['items'][number];

const REASONS: Record<string, string> = {
  subscription_create: 'Pro subscription',
  subscription_cycle: 'Pro renewal',
  subscription_update: 'Billing cycle switch',
};

const STATUS_TONE: Record<string, 'success' | 'warning' | 'danger' | 'neutral'> = { paid: 'success', open: 'warning', uncollectible: 'danger', void: 'neutral', draft: 'neutral' };

export function InvoicesCard() {
  const ctx = useOrg();
  const [items, setItems] = createSignal<Invoice[]>([]);
  const [next, setNext] = createSignal<string | null>(null);
  const [loaded, setLoaded] = createSignal(false);
  const [error, setError] = createSignal<unknown>(null);
  const [more, setMore] = createSignal(false);
  const [moreError, setMoreError] = createSignal<string | null>(null);

  const load = async () => {
    try {
      const page = await api.billing.invoices.query({ orgId: ctx.orgId() });
      setItems(page.items);
      setNext(page.nextCursor);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoaded(true);
    }
  };
  const loadMore = async () => {
    const cursor = next();
    if (!cursor || more()) return;
    setMore(true);
    setMoreError(null);
    try {
      const page = await api.billing.invoices.query({ orgId: ctx.orgId(), cursor });
      setItems([...items(), ...page.items.filter((i) => !items().some((x) => x.id === i.id))]);
      setNext(page.nextCursor);
    } catch (err) {
      setMoreError(errorMessage(err));
    } finally {
      setMore(false);
    }
  };
  onMount(() => void load());
  ctx.onEvent((e) => {
    if (e.type === 'billing.updated' && (e.reason === 'invoice' || e.reason === 'subscription')) void load();
  });

  return (
    <Card title="Invoices" id="invoices" description="Invoices for the Pro plan. Credit purchases are on Transactions.">
      <Show when={loaded()} fallback={<Loading label="Loading invoices…" />}>
        <Show when={!error()} fallback={<ErrorState error={error()} retry={() => void load()} />}>
          <Show
            when={items().length > 0}
            fallback={
              <EmptyState title="No invoices yet">
                <p class="muted">Each Pro payment (subscribing, renewing, switching between monthly and yearly) gets an invoice here.</p>
              </EmptyState>
            }
          >
            <div class="table-wrap">
              <table class="table table-stack invoices-table" data-testid="invoices">
                <thead>
                  <tr>
                    <th scope="col">Invoice</th>
                    <th scope="col">Date</th>
                    <th scope="col" class="hide-sm">Period</th>
                    <th scope="col" class="num">Amount</th>
                    <th scope="col">Status</th>
                    <th scope="col">
                      <span class="sr-only">Download</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={items()}>
                    {(inv) => (
                      <tr data-testid="invoice-row">
                        <td data-label="Invoice">
                          <span class="mono">{inv.number ?? inv.id}</span>
                          <span class="cell-sub">{REASONS[inv.reason ?? ''] ?? 'Invoice'}</span>
                        </td>
                        <td data-label="Date" class="nowrap">
                          {formatDate(inv.createdAt)}
                        </td>
                        <td data-label="Period" class="nowrap hide-sm">
                          {formatDate(inv.periodStart)} – {formatDate(inv.periodEnd)}
                        </td>
                        <td data-label="Amount" class="num nowrap">
                          {formatMoney(inv.amountPaid)}
                          <Show when={inv.amount !== inv.amountPaid}>
                            <span class="cell-sub">total {formatMoney(inv.amount, { signed: true })}</span>
                          </Show>
                        </td>
                        <td data-label="Status">
                          <Badge tone={STATUS_TONE[inv.status] ?? 'neutral'}>{inv.status}</Badge>
                        </td>
                        <td class="row-actions nowrap">
                          <Show when={inv.hostedUrl}>
                            <a class="btn btn-ghost btn-sm" href={inv.hostedUrl!} target="_blank" rel="noopener">
                              View<span class="sr-only"> invoice {inv.number}</span>
                            </a>
                          </Show>
                          <Show when={inv.pdfUrl}>
                            <a class="btn btn-secondary btn-sm" href={inv.pdfUrl!} download="" data-testid="invoice-pdf">
                              PDF<span class="sr-only"> of invoice {inv.number}</span>
                            </a>
                          </Show>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </div>
            <Show when={next()}>
              <div class="form-actions">
                <Button size="sm" loading={more()} onClick={() => void loadMore()}>
                  Load older invoices
                </Button>
                <Show when={moreError()}>
                  <span class="form-error" role="alert">
                    {moreError()}
                  </span>
                </Show>
              </div>
            </Show>
          </Show>
        </Show>
      </Show>
    </Card>
  );
}
