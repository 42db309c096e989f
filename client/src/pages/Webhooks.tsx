/**
 * Webhooks (owners and admins): endpoints that receive the organization's events as signed POSTs
 * (docs/webhooks.md). Add (the secret is shown once), edit, enable/disable, rotate the secret,
 * send a test, and each endpoint's delivery log with redelivery; all of it updates live.
 */
import { createSignal, For, onCleanup, onMount, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../../../shared/webhooks.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, CopyField, createAction, EmptyState, Field, LoadMoreFooter, LoadState, PageHeader, TextField } from '../ui/components.js';
import { formatDateTime } from '../ui/format.js';
import { toast } from '../ui/toast.js';

type Webhook = RouterOutputs['webhook']['list'][number];
type Delivery = RouterOutputs['webhook']['deliveries']['items'][number];

const EVENT_TYPES = Object.keys(WEBHOOK_EVENT_TYPES) as WebhookEventType[];
const CHECK_GRID = { display: 'grid', 'grid-template-columns': 'repeat(auto-fill, minmax(230px, 1fr))', gap: '8px 16px', margin: '4px 0 12px' };

export function WebhooksPage() {
  const ctx = useOrg();
  return (
    <Show
      when={ctx.can('webhook.manage')}
      fallback={
        <div class="page">
          <PageHeader title="Webhooks" />
          <div class="role-note" role="note" data-testid="webhooks-no-access">
            <p class="cell-title">You don't have access to webhooks</p>
            <p class="card-pad">Owners and admins of {ctx.org()?.name} register the endpoints that receive the organization's events.</p>
          </div>
        </div>
      }
    >
      <WebhooksContent />
    </Show>
  );
}

/** Calls `fn` at most once per `ms`, and once more after the last call of a burst. */
function throttled(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

function WebhooksContent() {
  const ctx = useOrg();
  const { state, load } = createReloadingList(() => api.webhook.list.query({ orgId: ctx.orgId() }));
  const [adding, setAdding] = createSignal(false);
  const [secret, setSecret] = createSignal<{ url: string; value: string; rotated: boolean } | null>(null);
  /** Open delivery logs, told when one of their deliveries changes. */
  const logListeners = new Set<(webhookId: string) => void>();
  const reloadList = throttled(() => void load(), 500);
  onMount(() => void load());
  ctx.onEvent((e) => {
    if (e.type === 'webhook.changed') {
      void load();
      if (e.change === 'disabled') {
        const hook = state.items.find((w) => w.id === e.webhookId);
        toast.error(`Webhook ${hook ? hook.url : ''} was disabled after failing for too long.`);
      }
    }
    if (e.type === 'webhook.delivery') {
      reloadList();
      for (const l of logListeners) l(e.webhookId);
    }
  });

  return (
    <div class="page">
      <PageHeader
        title="Webhooks"
        description={
          <>
            Endpoints that receive this organization's events as signed <code class="mono">POST</code> requests, retried for a day until they answer 2xx,
            in order. See docs/webhooks.md for verifying the <code class="mono">x-gateway-signature</code> header.
          </>
        }
        actions={
          <Button variant="primary" onClick={() => setAdding(true)} disabled={adding()}>
            Add endpoint
          </Button>
        }
      />
      <Show when={secret()}>
        {(s) => (
          <div class="callout callout-success" role="status" data-testid="webhook-secret">
            <div class="callout-body" style={{ flex: '1' }}>
              <p class="callout-title">{s().rotated ? 'New signing secret' : 'Endpoint added'}: copy its signing secret now</p>
              <p>It is shown only this once. Deliveries to {s().url} are signed with it.</p>
              <CopyField label="Signing secret" value={s().value} testId="webhook-secret-value" />
            </div>
            <Button variant="ghost" size="sm" onClick={() => setSecret(null)}>
              I've saved it
            </Button>
          </div>
        )}
      </Show>
      <Show when={adding()}>
        <WebhookForm
          orgId={ctx.orgId()}
          onDone={(created) => {
            setAdding(false);
            if (created && created !== true) {
              setSecret({ url: created.webhook.url, value: created.secret, rotated: false });
              void load();
            }
          }}
        />
      </Show>
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
        <Show
          when={state.items.length > 0}
          fallback={
            <EmptyState title="No webhook endpoints yet">
              <p class="muted">Add one to receive events such as credit changes, budget alerts, usage and membership changes on your own server.</p>
            </EmptyState>
          }
        >
          <div class="stack" data-testid="webhooks">
            <For each={state.items}>
              {(w) => (
                <WebhookCard
                  webhook={w}
                  onChanged={() => void load()}
                  onSecret={(value) => setSecret({ url: w.url, value, rotated: true })}
                  listen={(l) => {
                    logListeners.add(l);
                    onCleanup(() => logListeners.delete(l));
                  }}
                />
              )}
            </For>
          </div>
        </Show>
      </LoadState>
    </div>
  );
}

function statusBadge(w: Webhook) {
  if (!w.enabled) return <Badge tone="danger">Disabled</Badge>;
  if (w.failingSince) return <Badge tone="warning">Failing</Badge>;
  return <Badge tone="success">Active</Badge>;
}

function WebhookCard(props: { webhook: Webhook; onChanged: () => void; onSecret: (secret: string) => void; listen: (l: (webhookId: string) => void) => void }) {
  const w = () => props.webhook;
  const [editing, setEditing] = createSignal(false);
  const [showLog, setShowLog] = createSignal(false);
  const [toggling, toggle] = createAction(async () => {
    const enabled = !w().enabled;
    await api.webhook.update.mutate({ webhookId: w().id, enabled });
    toast.success(enabled ? 'Endpoint enabled.' : 'Endpoint disabled; its pending deliveries were stopped.');
    props.onChanged();
  });
  const [testing, sendTest] = createAction(async () => {
    await api.webhook.sendTest.mutate({ webhookId: w().id });
    toast.success('Test event queued.');
    setShowLog(true);
  });
  const [rotating, rotate] = createAction(async () => {
    const ok = await confirmAction({
      title: 'Rotate the signing secret?',
      body: 'The current secret stops verifying at the next delivery. Update your receiver with the new one straight away.',
      confirmLabel: 'Rotate secret',
    });
    if (!ok) return;
    const { secret } = await api.webhook.rotateSecret.mutate({ webhookId: w().id });
    props.onSecret(secret);
  });
  const [deleting, remove] = createAction(async () => {
    const ok = await confirmAction({ title: 'Delete this endpoint?', body: `${w().url} stops receiving events, and its delivery log is deleted.`, confirmLabel: 'Delete endpoint', danger: true });
    if (!ok) return;
    await api.webhook.delete.mutate({ webhookId: w().id });
    toast.success('Endpoint deleted.');
    props.onChanged();
  });
  const events = () => (w().events.includes('*') ? 'All events' : w().events.join(', '));
  return (
    <div data-testid="webhook">
      <Card>
        <div class="card-pad">
          <div style={{ display: 'flex', 'flex-wrap': 'wrap', gap: '8px', 'align-items': 'center', 'justify-content': 'space-between' }}>
            <div style={{ 'min-width': '0', flex: '1 1 280px' }}>
              <p class="cell-title break-all mono">{w().url}</p>
              <p class="muted" style={{ margin: '4px 0 0' }}>
                {events()}
              </p>
            </div>
            <div class="badges">
              {statusBadge(w())}
              <Show when={w().pendingDeliveries > 0}>
                <Badge tone="neutral">{w().pendingDeliveries} pending</Badge>
              </Show>
            </div>
          </div>
          <Show when={w().disabledReason}>
            <p class="text-danger" style={{ margin: '8px 0 0' }}>
              Disabled by the gateway: {w().disabledReason}. Fix the endpoint, enable it, then redeliver what it missed.
            </p>
          </Show>
          <p class="muted" style={{ margin: '8px 0 0' }}>
            <Show when={w().lastAttempt} fallback={<>No deliveries yet · added {formatDateTime(w().createdAt)}</>}>
              {(a) => (
                <>
                  Last attempt {formatDateTime(a().at)}: {a().status === 'pending' ? 'failed, retrying' : a().status}
                  {a().responseStatus ? ` (HTTP ${a().responseStatus})` : ''}
                  <Show when={w().failingSince}> · failing since {formatDateTime(w().failingSince)}</Show>
                </>
              )}
            </Show>
          </p>
          <div class="form-actions" style={{ 'flex-wrap': 'wrap', 'margin-top': '12px' }}>
            <Button size="sm" onClick={() => setShowLog(!showLog())} aria-expanded={showLog()}>
              {showLog() ? 'Hide deliveries' : 'Deliveries'}
            </Button>
            <Button size="sm" variant="ghost" loading={testing()} disabled={!w().enabled} onClick={() => void sendTest()}>
              Send test
            </Button>
            <Button size="sm" variant="ghost" onClick={() => setEditing(!editing())}>
              Edit
            </Button>
            <Button size="sm" variant="ghost" loading={toggling()} onClick={() => void toggle()}>
              {w().enabled ? 'Disable' : 'Enable'}
            </Button>
            <Button size="sm" variant="ghost" loading={rotating()} onClick={() => void rotate()}>
              Rotate secret
            </Button>
            <Button size="sm" variant="ghost" class="text-danger" loading={deleting()} onClick={() => void remove()}>
              Delete
            </Button>
          </div>
        </div>
        <Show when={editing()}>
          <div class="card-pad">
            <WebhookForm
              webhook={w()}
              onDone={(saved) => {
                setEditing(false);
                if (saved) props.onChanged();
              }}
            />
          </div>
        </Show>
        <Show when={showLog()}>
          <DeliveryLog webhookId={w().id} enabled={w().enabled} listen={props.listen} />
        </Show>
      </Card>
    </div>
  );
}

/** Add (orgId) or edit (webhook) an endpoint: its URL and the event types it takes. */
function WebhookForm(props: { orgId?: string; webhook?: Webhook; onDone: (result: RouterOutputs['webhook']['create'] | true | null) => void }) {
  const [url, setUrl] = createSignal(props.webhook?.url ?? '');
  const initial = props.webhook?.events ?? ['*'];
  const [all, setAll] = createSignal(initial.includes('*'));
  const [chosen, setChosen] = createSignal<Set<string>>(new Set(initial.filter((e) => e !== '*')));
  const [errors, setErrors] = createSignal<Record<string, string>>({});
  const toggleType = (type: string, on: boolean) => {
    const next = new Set(chosen());
    if (on) next.add(type);
    else next.delete(type);
    setChosen(next);
  };
  const [pending, run] = createAction(
    async () => {
      const events = all() ? ['*'] : [...chosen()];
      const errs: Record<string, string> = {};
      if (!/^https?:\/\/\S+$/.test(url().trim())) errs.url = 'Enter the endpoint URL, e.g. https://example.com/hooks/gateway';
      if (events.length === 0) errs.events = 'Choose at least one event type, or all events';
      setErrors(errs);
      if (Object.keys(errs).length) return;
      if (props.webhook) {
        await api.webhook.update.mutate({ webhookId: props.webhook.id, url: url().trim(), events });
        toast.success('Endpoint saved.');
        props.onDone(true);
      } else {
        props.onDone(await api.webhook.create.mutate({ orgId: props.orgId!, url: url().trim(), events }));
      }
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        if (fields.url || fields.events) setErrors(fields);
        else if (/URL/.test(errorMessage(err))) setErrors({ url: errorMessage(err) });
        else toast.error(errorMessage(err));
      },
    },
  );
  const body = (
    <form
      novalidate
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      <TextField label="Endpoint URL" value={url()} onInput={setUrl} error={errors().url} placeholder="https://example.com/hooks/gateway" autocomplete="off" />
      <Field label="Events" error={errors().events}>
        {(id, describedBy) => (
          <div id={id} role="group" aria-describedby={describedBy}>
            <label class="checkbox" style={{ 'font-weight': 'normal' }}>
              <input type="checkbox" checked={all()} onChange={(e) => setAll(e.currentTarget.checked)} />
              <span>All events, including types added later</span>
            </label>
            <Show when={!all()}>
              <div style={CHECK_GRID} data-testid="webhook-event-types">
                <For each={EVENT_TYPES}>
                  {(type) => (
                    <label class="checkbox" title={WEBHOOK_EVENT_TYPES[type]} style={{ 'align-items': 'flex-start', 'font-weight': 'normal' }}>
                      <input type="checkbox" style={{ flex: 'none', 'margin-top': '2px' }} checked={chosen().has(type)} onChange={(e) => toggleType(type, e.currentTarget.checked)} />
                      <span>
                        <code class="mono">{type}</code>
                        <br />
                        <span class="muted">{WEBHOOK_EVENT_TYPES[type]}</span>
                      </span>
                    </label>
                  )}
                </For>
              </div>
            </Show>
          </div>
        )}
      </Field>
      <div class="form-actions">
        <Button type="submit" variant="primary" loading={pending()}>
          {props.webhook ? 'Save endpoint' : 'Add endpoint'}
        </Button>
        <Button onClick={() => props.onDone(null)}>Cancel</Button>
      </div>
    </form>
  );
  return props.webhook ? body : <Card title="Add a webhook endpoint">{body}</Card>;
}

function deliveryBadge(d: Delivery) {
  if (d.status === 'delivered') return <Badge tone="success">Delivered</Badge>;
  if (d.status === 'failed') return <Badge tone="danger">Failed</Badge>;
  return <Badge tone={d.attempts > 0 ? 'warning' : 'neutral'}>{d.attempts > 0 ? 'Retrying' : 'Pending'}</Badge>;
}

function DeliveryLog(props: { webhookId: string; enabled: boolean; listen: (l: (webhookId: string) => void) => void }) {
  const [state, setState] = createStore({ items: [] as Delivery[], nextCursor: null as string | null, loaded: false, loadingMore: false, error: null as unknown });
  const [open, setOpen] = createSignal<string | null>(null);
  /** Reloads the newest page, keeping older pages already loaded. */
  const loadFirst = async () => {
    try {
      const page = await api.webhook.deliveries.query({ webhookId: props.webhookId });
      const older = state.items.filter((d) => page.items.length > 0 && BigInt(d.seq) < BigInt(page.items[page.items.length - 1]!.seq));
      setState('items', reconcile([...page.items, ...older], { key: 'id' }));
      if (!state.loaded) setState('nextCursor', page.nextCursor);
      setState({ loaded: true, error: null });
    } catch (err) {
      setState('error', err);
    }
  };
  const loadMore = async () => {
    if (!state.nextCursor) return;
    setState('loadingMore', true);
    try {
      const page = await api.webhook.deliveries.query({ webhookId: props.webhookId, cursor: state.nextCursor });
      setState('items', reconcile([...state.items, ...page.items], { key: 'id' }));
      setState('nextCursor', page.nextCursor);
    } catch (err) {
      toast.error(errorMessage(err));
    } finally {
      setState('loadingMore', false);
    }
  };
  const reload = throttled(() => void loadFirst(), 300);
  onMount(() => void loadFirst());
  props.listen((webhookId) => {
    if (webhookId === props.webhookId) reload();
  });
  return (
    <div class="card-pad" data-testid="webhook-deliveries">
      <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
        <Show when={state.items.length > 0} fallback={<p class="muted">No deliveries yet. Send a test to try the endpoint.</p>}>
          <div class="table-wrap">
            <table class="table table-stack table-compact">
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Response</th>
                  <th scope="col">Last attempt</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={state.items}>
                  {(d) => (
                    <>
                      <tr>
                        <td class="cell-title">
                          <code class="mono">{d.eventType}</code>
                          <Show when={d.redeliveryOf}>
                            <span class="muted"> · redelivery</span>
                          </Show>
                        </td>
                        <td data-label="Status">{deliveryBadge(d)}</td>
                        <td data-label="Attempts" class="num">
                          {d.attempts}
                        </td>
                        <td data-label="Response">
                          <span>
                            <Show when={d.responseStatus} fallback={<span class="muted">{d.lastError ? 'No response' : '—'}</span>}>
                              HTTP {d.responseStatus}
                            </Show>
                            <Show when={d.status === 'pending' && d.nextAttemptAt && d.attempts > 0}>
                              <span class="muted"> · next {formatDateTime(d.nextAttemptAt)}</span>
                            </Show>
                          </span>
                        </td>
                        <td data-label="Last attempt" class="nowrap">
                          {d.lastAttemptAt ? formatDateTime(d.lastAttemptAt) : <span class="muted">—</span>}
                        </td>
                        <td class="row-actions">
                          <Button size="sm" variant="ghost" onClick={() => setOpen(open() === d.id ? null : d.id)} aria-expanded={open() === d.id}>
                            {open() === d.id ? 'Hide' : 'Details'}
                          </Button>
                          <Show when={d.status !== 'pending'}>
                            <RedeliverButton delivery={d} enabled={props.enabled} onDone={reload} />
                          </Show>
                        </td>
                      </tr>
                      <Show when={open() === d.id}>
                        <tr>
                          <td colSpan={6}>
                            <div style={{ width: '100%', 'min-width': '0' }}>
                              <Show when={d.lastError}>
                                <p class="text-danger break-all">Last error: {d.lastError}</p>
                              </Show>
                              <p class="muted">
                                Event {d.eventId} · queued {formatDateTime(d.createdAt)}
                                {d.durationMs !== null ? ` · ${d.durationMs} ms` : ''}
                              </p>
                              <pre class="mono break-all" style={{ 'white-space': 'pre-wrap', margin: '6px 0 0' }}>
                                {JSON.stringify(JSON.parse(d.body), null, 2)}
                              </pre>
                            </div>
                          </td>
                        </tr>
                      </Show>
                    </>
                  )}
                </For>
              </tbody>
            </table>
          </div>
          <LoadMoreFooter more={state.nextCursor !== null} loading={state.loadingMore} onLoad={() => void loadMore()} />
        </Show>
      </LoadState>
    </div>
  );
}

function RedeliverButton(props: { delivery: Delivery; enabled: boolean; onDone: () => void }) {
  const [pending, redeliver] = createAction(async () => {
    await api.webhook.redeliver.mutate({ deliveryId: props.delivery.id });
    toast.success('Redelivery queued.');
    props.onDone();
  });
  return (
    <Button size="sm" variant="ghost" loading={pending()} disabled={!props.enabled} onClick={() => void redeliver()}>
      Redeliver<span class="sr-only"> {props.delivery.eventType}</span>
    </Button>
  );
}
