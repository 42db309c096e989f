/**
 * Request log: newest first, filtered (time range, project, API key, status, model, provider,
 * endpoint, cache, text in retained bodies), paged by cursor. A row opens its detail in a drawer
 * over the list, which stays put while calls arrive: while the reader has scrolled down or has a
 * row open, new calls wait behind an "N new" control instead of moving the rows being read.
 */
import { createEffect, createMemo, createResource, createSignal, For, Match, on, onCleanup, onMount, Show, Switch } from 'solid-js';
import { createAtTop } from '../state/scroll.js';
import { createStore } from 'solid-js/store';
import { api, type RouterOutputs } from '../api.js';
import { createCursorList, createThrottle } from '../state/cursor-list.js';
import { useOrg } from '../state/org-context.js';
import { Badge, Button, Card, createAction, EmptyState, ErrorState, Loading, LoadMoreFooter, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDateTime } from '../ui/format.js';
import { formatCost, formatCount, formatMs } from '../ui/usage-format.js';
import { refusedBy } from '../ui/limits.js';
import { readConversation, type Message, type Part } from './log-conversation.js';
import { filtersInUrl } from './filters-url.js';
import './records.css';

type Log = RouterOutputs['logs']['list']['items'][number];
type StatusFilter = '' | 'success' | 'error';
type CachedFilter = '' | 'yes' | 'no';
type RangeFilter = '1h' | '24h' | '7d' | '30d' | 'custom';
const PAGE_SIZE = 50;
const HOUR = 3_600_000;
const RANGE_MS: Record<Exclude<RangeFilter, 'custom'>, number> = { '1h': HOUR, '24h': 24 * HOUR, '7d': 7 * 24 * HOUR, '30d': 30 * 24 * HOUR };
const RANGES: { value: RangeFilter; label: string }[] = [
  { value: '1h', label: 'Last hour' },
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
  { value: 'custom', label: 'Custom range' },
];
export const ENDPOINT_LABELS: Record<string, string> = {
  'chat.completions': 'Chat completions',
  messages: 'Messages (Anthropic)',
  responses: 'Responses',
  embeddings: 'Embeddings',
};

interface Filters {
  range: RangeFilter;
  from: string;
  to: string;
  projectId: string;
  apiKeyId: string;
  status: StatusFilter;
  cached: CachedFilter;
  model: string;
  provider: string;
  endpoint: string;
  search: string;
}
const EMPTY: Filters = { range: '24h', from: '', to: '', projectId: '', apiKeyId: '', status: '', cached: '', model: '', provider: '', endpoint: '', search: '' };

/** Each filter's name in the query string (?range=7d&key=…&status=error&q=timeout). */
const FILTER_PARAMS: Record<keyof Filters, string> = {
  range: 'range', from: 'from', to: 'to', projectId: 'project', apiKeyId: 'key', status: 'status',
  cached: 'cached', model: 'model', provider: 'provider', endpoint: 'endpoint', search: 'q',
};
const FILTER_CHOICES: Partial<Record<keyof Filters, readonly string[]>> = {
  range: ['1h', '24h', '7d', '30d', 'custom'],
  status: ['', 'success', 'error'],
  cached: ['', 'yes', 'no'],
};

/** `datetime-local` text (local time) to a Date, or undefined when empty or invalid. */
function localDate(text: string): Date | undefined {
  if (!text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The time range a filter set covers now ([from, to), to open-ended for the relative ranges). */
function rangeOf(f: Filters): { from?: Date; to?: Date } {
  if (f.range !== 'custom') return { from: new Date(Date.now() - RANGE_MS[f.range]) };
  const from = localDate(f.from);
  const to = localDate(f.to);
  return { ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

export function LogsPage() {
  const ctx = useOrg();
  const [projects] = createResource(() => ctx.orgId(), (orgId) => api.project.list.query({ orgId }));
  const projectList = () => (projects.state === 'errored' ? [] : (projects.latest ?? []));
  // The applied filters live in the query string too (shareable, kept on reload, back/forward restore them).
  const url = filtersInUrl<Filters>(EMPTY, FILTER_PARAMS, FILTER_CHOICES, (restored) => {
    setFilters({ ...restored });
    setApplied({ ...restored });
  });
  const [filters, setFilters] = createStore<Filters>({ ...url.initial });
  const [applied, setApplied] = createSignal<Filters>({ ...url.initial });
  const apply = () => {
    setApplied({ ...filters });
    url.write({ ...filters });
  };
  const setAndApply = <K extends keyof Filters>(key: K, value: Filters[K]) => {
    setFilters(key, value);
    apply();
  };
  const [selected, setSelected] = createSignal<string | null>(null);
  /** On a phone the filters fold away behind a button (the list comes first). */
  const [showFilters, setShowFilters] = createSignal(false);
  let opener: HTMLElement | null = null;

  const query = () => {
    const f = applied();
    return {
      orgId: ctx.orgId(),
      limit: PAGE_SIZE,
      ...rangeOf(f),
      ...(f.projectId ? { projectId: f.projectId } : {}),
      ...(f.apiKeyId ? { apiKeyId: f.apiKeyId } : {}),
      ...(f.status ? { status: f.status as 'success' | 'error' } : {}),
      ...(f.cached ? { cached: f.cached === 'yes' } : {}),
      ...(f.model ? { model: f.model } : {}),
      ...(f.provider ? { provider: f.provider } : {}),
      ...(f.endpoint ? { endpoint: f.endpoint } : {}),
      ...(f.search.trim() ? { search: f.search.trim() } : {}),
    };
  };

  // What the key, model and provider filters offer: what the range's traffic used (from the rollups).
  const facetRange = () => {
    const f = applied();
    const r = rangeOf(f);
    const to = r.to ?? new Date(Date.now() + HOUR);
    const from = r.from ?? new Date(to.getTime() - 30 * 24 * HOUR);
    return { orgId: ctx.orgId(), from: from < to ? from : new Date(to.getTime() - HOUR), to };
  };
  const [facets] = createResource(
    () => ({ ...facetRange(), range: applied().range }),
    async ({ orgId, from, to }) => {
      const [models, providers, keys] = await Promise.all(
        (['model', 'provider', 'apiKey'] as const).map((by) => api.analytics.breakdown.query({ orgId, from, to, by, limit: 200 })),
      );
      return { models: [...new Set(models!.map((m) => m.label))].sort(), providers: providers!.map((p) => p.key).sort(), keys: keys!.map((k) => ({ id: k.key, label: k.label })) };
    },
  );
  const facet = () => (facets.state === 'ready' || facets.state === 'refreshing' ? facets.latest : undefined);
  /** The options of a facet, keeping the chosen value even when this range's traffic did not use it. */
  const facetOptions = (all: string[] | undefined, chosen: string, anyLabel: string, label: (v: string) => string = (v) => v) => [
    { value: '', label: anyLabel },
    ...[...new Set([...(all ?? []), ...(chosen ? [chosen] : [])])].map((v) => ({ value: v, label: label(v) })),
  ];

  const list = createCursorList<Log>({ key: applied, fetch: (cursor) => api.logs.list.query({ ...query(), ...(cursor ? { cursor } : {}) }) });
  const { state, loadFirst } = list;
  createEffect(
    on(applied, () => {
      list.reset();
      setPending({ count: 0, more: false });
      void loadFirst();
    }),
  );

  // Live. Following (at the top, nothing open): new calls are merged on top. Otherwise they wait.
  const atTop = createAtTop();
  const following = () => atTop() && !selected();
  const [pending, setPending] = createSignal({ count: 0, more: false });
  const checkNew = async () => {
    if (!state.loaded) return;
    if (following()) {
      await list.mergeNewest();
      setPending({ count: 0, more: false });
      return;
    }
    const key = applied();
    const page = await api.logs.list.query(query()).catch(() => null);
    if (!page || key !== applied() || following()) return;
    const top = state.items[0]?.id;
    const fresh = top ? page.items.filter((i) => BigInt(i.id) > BigInt(top)) : page.items;
    setPending({ count: fresh.length, more: fresh.length === page.items.length && page.nextCursor !== null });
  };
  const checkSoon = createThrottle(() => void checkNew(), 2000);
  ctx.onEvent((e) => {
    if (e.type === 'usage') checkSoon();
  });
  const showNew = async () => {
    await list.mergeNewest();
    setPending({ count: 0, more: false });
    window.scrollTo({ top: 0 });
  };
  // Back at the top with nothing open: what waited comes in.
  createEffect(on(following, (f) => f && pending().count > 0 && void showNew(), { defer: true }));

  const [loadingMore, loadMore] = createAction(() => list.loadMore());
  const open = (id: string, from: HTMLElement | null) => {
    opener = from;
    setSelected(id);
  };
  const close = () => {
    setSelected(null);
    opener?.focus();
  };
  const neighbour = (step: 1 | -1) => {
    const i = state.items.findIndex((l) => l.id === selected());
    const next = i < 0 ? undefined : state.items[i + step];
    if (next) setSelected(next.id);
  };
  const activeFilters = createMemo(() => {
    const f = applied();
    return (Object.keys(EMPTY) as (keyof Filters)[]).filter((k) => k !== 'range' && k !== 'from' && k !== 'to' && f[k] !== EMPTY[k]).length + (f.range !== EMPTY.range ? 1 : 0);
  });

  return (
    <div class="page" classList={{ 'page-with-drawer': !!selected() }}>
      <PageHeader title="Request log" description="Every call through the gateway, newest first. New calls appear live." />
      <Card>
        <form
          class="log-filters"
          aria-label="Filters"
          onSubmit={(e) => {
            e.preventDefault();
            apply();
          }}
        >
          <Button class="filters-toggle" size="sm" aria-expanded={showFilters()} aria-controls="log-filter-row" onClick={() => setShowFilters(!showFilters())}>
            {showFilters() ? 'Hide filters' : activeFilters() > 0 ? `Filters (${activeFilters()})` : 'Filters'}
          </Button>
          <div class="log-filter-row" id="log-filter-row" classList={{ 'filters-open': showFilters() }}>
            <SelectField<RangeFilter> label="Time" value={filters.range} options={RANGES} onChange={(v) => (v === 'custom' ? setFilters('range', v) : setAndApply('range', v))} />
            <Show when={filters.range === 'custom'}>
              <TextField label="From" type="datetime-local" value={filters.from} onInput={(v) => setFilters('from', v)} onChange={apply} />
              <TextField label="To" type="datetime-local" value={filters.to} onInput={(v) => setFilters('to', v)} onChange={apply} />
            </Show>
            <SelectField label="Project" value={filters.projectId} options={[{ value: '', label: 'All projects' }, ...projectList().map((p) => ({ value: p.id, label: p.name }))]} onChange={(v) => setAndApply('projectId', v)} />
            <SelectField
              label="API key"
              value={filters.apiKeyId}
              options={[{ value: '', label: 'All keys' }, ...(facet()?.keys ?? []).map((k) => ({ value: k.id, label: k.label })), ...(filters.apiKeyId && !facet()?.keys.some((k) => k.id === filters.apiKeyId) ? [{ value: filters.apiKeyId, label: 'Chosen key' }] : [])]}
              onChange={(v) => setAndApply('apiKeyId', v)}
            />
            <SelectField<StatusFilter> label="Status" value={filters.status} options={[{ value: '', label: 'Any status' }, { value: 'success', label: 'Success' }, { value: 'error', label: 'Error' }]} onChange={(v) => setAndApply('status', v)} />
            <SelectField label="Model" value={filters.model} options={facetOptions(facet()?.models, filters.model, 'All models')} onChange={(v) => setAndApply('model', v)} />
            <SelectField label="Provider" value={filters.provider} options={facetOptions(facet()?.providers, filters.provider, 'All providers')} onChange={(v) => setAndApply('provider', v)} />
            <SelectField label="Endpoint" value={filters.endpoint} options={facetOptions(Object.keys(ENDPOINT_LABELS), filters.endpoint, 'All endpoints', (v) => ENDPOINT_LABELS[v] ?? v)} onChange={(v) => setAndApply('endpoint', v)} />
            <SelectField<CachedFilter> label="Cache" value={filters.cached} options={[{ value: '', label: 'Cached or not' }, { value: 'yes', label: 'Cache hits' }, { value: 'no', label: 'Not cached' }]} onChange={(v) => setAndApply('cached', v)} />
          </div>
          <div class="log-search-row">
            <TextField
              label="Search in bodies"
              type="search"
              value={filters.search}
              onInput={(v) => setFilters('search', v)}
              placeholder="Text in prompts or responses"
              hint={filters.range === 'custom' && !filters.from ? 'Without a start, the search covers the last 7 days (at most 31).' : 'Covers kept bodies (retention level “retain”), up to 31 days.'}
            />
            <div class="log-filter-submit">
              <Button type="submit" variant="primary">
                Search
              </Button>
              <Show when={activeFilters() > 0}>
                <Button
                  variant="ghost"
                  onClick={() => {
                    setFilters({ ...EMPTY });
                    apply();
                  }}
                >
                  Clear filters
                </Button>
              </Show>
            </div>
          </div>
        </form>
        <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
          <Show when={pending().count > 0}>
            <div class="new-rows-bar">
              <Button variant="primary" size="sm" onClick={() => void showNew()} data-testid="logs-new">
                {pending().more ? `${pending().count}+` : pending().count} new {pending().count === 1 && !pending().more ? 'request' : 'requests'}
              </Button>
            </div>
          </Show>
          <Show
            when={state.items.length > 0}
            fallback={
              <EmptyState title="No requests match">
                <p class="muted">{activeFilters() > 0 ? 'Try a longer time range or fewer filters.' : 'Calls made with a project API key appear here.'}</p>
              </EmptyState>
            }
          >
            <div class="table-wrap">
              <table class="table table-stack table-compact log-table" data-testid="logs">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Model</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num col-extra">Tokens in / out</th>
                    <th scope="col" class="num">Cost</th>
                    <th scope="col" class="num col-extra">Latency</th>
                    <th scope="col" class="hide-sm col-extra">Key</th>
                    <th scope="col">
                      <span class="sr-only">Details</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(l) => (
                      <tr classList={{ 'row-selected': selected() === l.id, 'row-clickable': true }} data-log-id={l.id} onClick={(e) => open(l.id, (e.currentTarget as HTMLElement).querySelector('button'))}>
                        <td class="nowrap">{formatDateTime(l.createdAt)}</td>
                        <td data-label="Model">
                          <span class="cell-title">{l.model}</span> <span class="muted small">{l.provider}</span>
                          <Show when={l.endpoint && l.endpoint !== 'chat.completions'}>
                            {' '}
                            <span class="endpoint-tag">{ENDPOINT_LABELS[l.endpoint] ?? l.endpoint}</span>
                          </Show>
                        </td>
                        <td data-label="Status">
                          <span>
                            <StatusBadges log={l} /> <FailoverMarker attempts={l.attempts} />
                          </span>
                        </td>
                        <td class="num col-extra" data-label="Tokens">
                          {formatCount(l.inputTokens)} / {formatCount(l.outputTokens)}
                        </td>
                        <td class="num" data-label="Cost">{formatCost(l.cost)}</td>
                        <td class="num col-extra" data-label="Latency">{formatMs(l.latencyMs)}</td>
                        <td class="hide-sm col-extra">{l.apiKey.name ?? '—'}</td>
                        <td class="row-actions">
                          <Button
                            size="sm"
                            variant="ghost"
                            aria-expanded={selected() === l.id}
                            aria-controls="log-drawer"
                            onClick={(e) => {
                              e.stopPropagation();
                              if (selected() === l.id) close();
                              else open(l.id, e.currentTarget);
                            }}
                          >
                            {selected() === l.id ? 'Open' : 'Details'}
                            <span class="sr-only"> of request {l.id}</span>
                          </Button>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </div>
            <LoadMoreFooter more={!!state.nextCursor} loading={loadingMore()} onLoad={() => void loadMore()} />
          </Show>
        </LoadState>
      </Card>
      <Show when={selected()}>
        {(id) => (
          <LogDrawer
            orgId={ctx.orgId()}
            logId={id()}
            onClose={close}
            onNewer={state.items[0]?.id !== id() ? () => neighbour(-1) : undefined}
            onOlder={state.items[state.items.length - 1]?.id !== id() ? () => neighbour(1) : undefined}
          />
        )}
      </Show>
    </div>
  );
}

function StatusBadges(props: { log: Pick<Log, 'status' | 'cached' | 'streamed' | 'canceled' | 'error'> }) {
  return (
    <span class="badges">
      <Badge tone={props.log.status >= 400 ? 'danger' : 'success'}>{props.log.status}</Badge>
      <Show when={refusedBy(props.log)}>
        {(limit) => (
          <span class="refused-tag" data-testid="refused-by" title={props.log.error ?? undefined}>
            Refused: {limit()}
          </span>
        )}
      </Show>
      <Show when={props.log.cached}>
        <Badge tone="accent">Cached</Badge>
      </Show>
      <Show when={props.log.streamed}>
        <Badge>Stream</Badge>
      </Show>
      <Show when={props.log.canceled}>
        <Badge tone="warning">Canceled</Badge>
      </Show>
    </span>
  );
}

type Attempt = Log['attempts'][number];

/** "Failed over from openai/gpt-4o to anthropic/claude-…" or "Retried on openai/gpt-4o" (the marker's tooltip). */
function failoverTitle(attempts: readonly Attempt[]): string {
  const first = attempts[0];
  const last = attempts[attempts.length - 1];
  if (!first || !last) return '';
  const where = (a: Attempt) => `${a.provider}/${a.model}`;
  return where(first) === where(last) ? `Retried on ${where(last)} (${attempts.length} attempts)` : `Failed over from ${where(first)} to ${where(last)} (${attempts.length} attempts)`;
}

/** The list's and drawer's marker of a call that needed more than one upstream attempt. */
function FailoverMarker(props: { attempts: readonly Attempt[] }) {
  return (
    <Show when={props.attempts.length > 1}>
      <span class="failover-marker" data-testid="failover-marker" title={failoverTitle(props.attempts)}>
        <Badge tone="warning">↻ {props.attempts.length} attempts</Badge>
        <span class="sr-only">: {failoverTitle(props.attempts)}</span>
      </span>
    </Show>
  );
}

/** Each upstream attempt of a call that needed more than one: where it went, with which key, and how it ended. */
function AttemptsTable(props: { attempts: readonly Attempt[] }) {
  const last = () => props.attempts.length - 1;
  return (
    <section class="attempts" aria-labelledby="log-attempts-title">
      <h3 id="log-attempts-title" class="attempts-title">
        Attempts <span class="muted small">in order: each failure moved the call to the next</span>
      </h3>
      <div class="table-wrap">
        <table class="table table-compact table-stack attempts-table" data-testid="log-attempts">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Provider</th>
              <th scope="col">Key</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">Latency</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            <For each={props.attempts}>
              {(a, i) => (
                <tr classList={{ 'attempt-last': i() === last() }}>
                  <td class="muted">
                    <span class="attempt-word">Attempt </span>
                    {i() + 1}
                  </td>
                  <td data-label="Provider">
                    <span class="cell-title">{a.provider}</span>
                    <span class="attempt-model muted small">{a.model}</span>
                  </td>
                  <td class="attempt-key" data-label="Key">{a.keyName || '—'}</td>
                  <td data-label="Status">
                    <Badge tone={a.status === 0 || a.status >= 400 ? 'danger' : 'success'}>{a.status === 0 ? 'No response' : a.status}</Badge>
                  </td>
                  <td class="num nowrap" data-label="Latency">{formatMs(a.latencyMs)}</td>
                  <td class="attempt-error" data-label="Error">{a.error ?? <span class="muted">—</span>}</td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>
    </section>
  );
}

type DetailTab = 'conversation' | 'request' | 'response';

function LogDrawer(props: { orgId: string; logId: string; onClose: () => void; onNewer?: (() => void) | undefined; onOlder?: (() => void) | undefined }) {
  const [log, { refetch }] = createResource(() => props.logId, (logId) => api.logs.get.query({ orgId: props.orgId, logId }));
  const [tab, setTab] = createSignal<DetailTab>('conversation');
  let heading: HTMLHeadingElement | undefined;
  createEffect(on(() => props.logId, () => queueMicrotask(() => heading?.focus())));
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') props.onClose();
  };
  onMount(() => document.addEventListener('keydown', onKey));
  onCleanup(() => document.removeEventListener('keydown', onKey));
  const conversation = createMemo(() => {
    const l = log.latest;
    return l && l.id === props.logId ? readConversation(l.endpoint, l.requestBody, l.responseBody) : null;
  });
  const hasBodies = () => log.latest?.requestBody != null || log.latest?.responseBody != null;
  createEffect(on(conversation, (c) => setTab(c || !hasBodies() ? 'conversation' : 'request')));

  return (
    <aside id="log-drawer" class="drawer" role="dialog" aria-modal="false" aria-labelledby="log-drawer-title" data-testid="log-detail">
      <header class="drawer-header">
        <h2 id="log-drawer-title" class="drawer-title" tabindex="-1" ref={(el) => (heading = el)}>
          Request {props.logId}
        </h2>
        <div class="drawer-actions">
          <Button size="sm" variant="ghost" disabled={!props.onNewer} onClick={() => props.onNewer?.()} aria-label="Newer request">
            ↑
          </Button>
          <Button size="sm" variant="ghost" disabled={!props.onOlder} onClick={() => props.onOlder?.()} aria-label="Older request">
            ↓
          </Button>
          <Button size="sm" onClick={props.onClose}>
            Close
          </Button>
        </div>
      </header>
      <div class="drawer-body">
        <Show when={!log.error} fallback={<ErrorState error={log.error} retry={() => void refetch()} />}>
          <Show when={log.latest && log.latest.id === props.logId ? log.latest : undefined} fallback={<Loading />}>
            {(l) => (
              <>
                <div class="drawer-summary">
                  <span class="cell-title">{l().model}</span>
                  <span class="muted small">{l().provider}</span>
                  <span class="endpoint-tag">{ENDPOINT_LABELS[l().endpoint] ?? l().endpoint}</span>
                  <StatusBadges log={l()} />
                  <FailoverMarker attempts={l().attempts} />
                </div>
                <dl class="facts facts-compact">
                  <div><dt>Time</dt><dd>{formatDateTime(l().createdAt)}</dd></div>
                  <div><dt>API key</dt><dd>{l().apiKey.name ?? '—'} <span class="muted small">{l().apiKey.prefix ? `${l().apiKey.prefix}…` : ''}</span></dd></div>
                  <div><dt>Tokens in / out</dt><dd>{formatCount(l().inputTokens)} / {formatCount(l().outputTokens)}</dd></div>
                  <div><dt>Cached input</dt><dd>{formatCount(l().cachedTokens)}<Show when={l().cacheWriteTokens > 0}> <span class="muted small">({formatCount(l().cacheWriteTokens)} written)</span></Show></dd></div>
                  <div><dt>Cost</dt><dd>{formatCost(l().cost)} <span class="muted small">{PAID_BY[l().paidBy] ?? l().paidBy}</span></dd></div>
                  <div><dt>Latency</dt><dd>{formatMs(l().latencyMs)}<Show when={l().ttftMs !== null}> <span class="muted small">first token {formatMs(l().ttftMs)}</span></Show></dd></div>
                </dl>
                <Show when={l().attempts.length > 1}>
                  <AttemptsTable attempts={l().attempts} />
                </Show>
                <Show when={l().error}>
                  <div class="callout callout-danger" role="note">
                    <p><strong>{refusedBy(l()) ? `Refused by the ${refusedBy(l())}:` : 'Error:'}</strong> {l().error}</p>
                  </div>
                </Show>
                <Show when={hasBodies()} fallback={<p class="muted small">Bodies are kept only while the organization's retention level is “retain”.</p>}>
                  <div class="tabs detail-tabs" role="tablist" aria-label="Request detail">
                    <For each={[['conversation', 'Conversation'], ['request', 'Request JSON'], ['response', 'Response JSON']] as const}>
                      {([value, label]) => (
                        <button type="button" role="tab" class="tab" classList={{ active: tab() === value }} aria-selected={tab() === value} onClick={() => setTab(value)}>
                          {label}
                        </button>
                      )}
                    </For>
                  </div>
                  <div role="tabpanel" class="detail-panel">
                    <Switch>
                      <Match when={tab() === 'conversation'}>
                        <Show when={conversation()} fallback={<p class="muted small">This body is not a conversation shape the dashboard reads; the raw JSON is one tab over.</p>}>
                          {(c) => <ConversationView conversation={c()} />}
                        </Show>
                      </Match>
                      <Match when={tab() === 'request'}>
                        <JsonBlock value={l().requestBody} />
                      </Match>
                      <Match when={tab() === 'response'}>
                        <JsonBlock value={l().responseBody} />
                      </Match>
                    </Switch>
                  </div>
                </Show>
              </>
            )}
          </Show>
        </Show>
      </div>
    </aside>
  );
}

const PAID_BY: Record<string, string> = { credits: 'from credits', provider_key: 'on your provider key', cache: 'served from cache', none: 'not charged' };

function JsonBlock(props: { value: unknown }) {
  const text = () => (props.value == null ? 'Not kept' : JSON.stringify(props.value, null, 2));
  return (
    <div class="json-block">
      <Button size="sm" variant="ghost" class="json-copy" onClick={() => void navigator.clipboard?.writeText(text())}>
        Copy
      </Button>
      <pre class="code-block code-block-tall" tabindex="0">{text()}</pre>
    </div>
  );
}

const ROLE_LABELS: Record<string, string> = { system: 'System', developer: 'Developer', user: 'User', assistant: 'Assistant', tool: 'Tool', function: 'Function', input: 'Input' };

function ConversationView(props: { conversation: NonNullable<ReturnType<typeof readConversation>> }) {
  return (
    <div class="conversation" data-testid="conversation">
      <Show when={props.conversation.tools.length > 0}>
        <p class="muted small">Tools offered: {props.conversation.tools.join(', ')}</p>
      </Show>
      <For each={props.conversation.request}>{(m) => <MessageView message={m} />}</For>
      <Show when={props.conversation.response.length > 0}>
        <div class="conversation-divider" role="separator">
          <span>Response</span>
        </div>
        <For each={props.conversation.response}>{(m) => <MessageView message={m} response />}</For>
      </Show>
      <Show when={props.conversation.notes.length > 0}>
        <p class="muted small">{props.conversation.notes.join(' · ')}</p>
      </Show>
    </div>
  );
}

function MessageView(props: { message: Message; response?: boolean }) {
  return (
    <div class={`message message-${props.message.role}`} classList={{ 'message-response': !!props.response }}>
      <div class="message-role">
        {ROLE_LABELS[props.message.role] ?? props.message.role}
        <Show when={props.message.name}>
          <span class="muted"> · {props.message.name}</span>
        </Show>
      </div>
      <For each={props.message.parts} fallback={<p class="muted small">(empty)</p>}>
        {(p) => <PartView part={p} />}
      </For>
    </div>
  );
}

function PartView(props: { part: Part }) {
  const [shown, setShown] = createSignal(false);
  const p = props.part;
  switch (p.kind) {
    case 'text':
      return <p class="message-text">{p.text}</p>;
    case 'thinking':
      return (
        <details class="message-thinking">
          <summary>Thinking</summary>
          <p class="message-text">{p.text}</p>
        </details>
      );
    case 'image':
      // Remote images load only when asked (a URL in a prompt is not fetched by opening the log).
      return p.inline || shown() ? (
        <img class="message-image" src={p.url} alt="Image in the message" referrerpolicy="no-referrer" loading="lazy" />
      ) : (
        <div class="message-tool">
          <span class="muted small">Image: </span>
          <code class="small break-all">{p.url}</code>{' '}
          <Button size="sm" variant="ghost" onClick={() => setShown(true)}>
            Show image
          </Button>
        </div>
      );
    case 'toolCall':
      return (
        <div class="message-tool">
          <div class="message-tool-title">
            Calls <code>{p.name}</code>
            <Show when={p.id}>
              <span class="muted small"> {p.id}</span>
            </Show>
          </div>
          <pre class="code-block code-block-small">{p.args}</pre>
        </div>
      );
    case 'toolResult':
      return (
        <div class="message-tool" classList={{ 'message-tool-error': p.isError }}>
          <div class="message-tool-title">
            Result{p.isError ? ' (error)' : ''}
            <Show when={p.id}>
              <span class="muted small"> for {p.id}</span>
            </Show>
          </div>
          <pre class="code-block code-block-small">{p.text}</pre>
        </div>
      );
    case 'json':
      return (
        <div class="message-tool">
          <div class="message-tool-title muted small">{p.label}</div>
          <pre class="code-block code-block-small">{JSON.stringify(p.value, null, 2)}</pre>
        </div>
      );
  }
}
