/** Request log: newest first, filtered as the server supports, paged by cursor, with a detail view. */
import { createEffect, createResource, createSignal, For, on, Show } from 'solid-js';
import { createStore } from 'solid-js/store';
import { api, type RouterOutputs } from '../api.js';
import { createCursorList, createThrottle } from '../state/cursor-list.js';
import { useOrg } from '../state/org-context.js';
import { Badge, Button, Card, createAction, EmptyState, ErrorState, Loading, LoadMoreFooter, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDateTime } from '../ui/format.js';
import { formatCost, formatCount, formatMs } from '../ui/usage-format.js';

type Log = RouterOutputs['logs']['list']['items'][number];
type StatusFilter = '' | 'success' | 'error';
type CachedFilter = '' | 'yes' | 'no';
const PAGE_SIZE = 50;

export function LogsPage() {
  const ctx = useOrg();
  const [projects] = createResource(() => ctx.orgId(), (orgId) => api.project.list.query({ orgId }));
  const projectList = () => (projects.state === 'errored' ? [] : (projects.latest ?? []));
  const [filters, setFilters] = createStore({ projectId: '', status: '' as StatusFilter, cached: '' as CachedFilter, model: '', provider: '' });
  const [applied, setApplied] = createSignal({ ...filters });
  const [selected, setSelected] = createSignal<string | null>(null);

  const query = () => {
    const f = applied();
    return {
      orgId: ctx.orgId(),
      limit: PAGE_SIZE,
      ...(f.projectId ? { projectId: f.projectId } : {}),
      ...(f.status ? { status: f.status as 'success' | 'error' } : {}),
      ...(f.cached ? { cached: f.cached === 'yes' } : {}),
      ...(f.model.trim() ? { model: f.model.trim() } : {}),
      ...(f.provider.trim() ? { provider: f.provider.trim() } : {}),
    };
  };

  const list = createCursorList<Log>({ key: applied, fetch: (cursor) => api.logs.list.query({ ...query(), ...(cursor ? { cursor } : {}) }) });
  const { state, loadFirst } = list;
  createEffect(
    on(applied, () => {
      list.reset();
      void loadFirst();
    }),
  );
  // Live: new calls are merged on top (at most every 2 s), keeping pages loaded with "Load more".
  const mergeSoon = createThrottle(() => void list.mergeNewest(), 2000);
  ctx.onEvent((e) => {
    if (e.type === 'usage') mergeSoon();
  });
  const [loadingMore, loadMore] = createAction(() => list.loadMore());

  return (
    <div class="page">
      <PageHeader title="Request log" description="Every call through the gateway, newest first. New calls appear live." />
      <Card>
        <form
          class="toolbar log-filters"
          aria-label="Filters"
          onSubmit={(e) => {
            e.preventDefault();
            setApplied({ ...filters });
          }}
        >
          <SelectField label="Project" value={filters.projectId} options={[{ value: '', label: 'All projects' }, ...projectList().map((p) => ({ value: p.id, label: p.name }))]} onChange={(v) => { setFilters('projectId', v); setApplied({ ...filters }); }} />
          <SelectField<StatusFilter> label="Status" value={filters.status} options={[{ value: '', label: 'Any status' }, { value: 'success', label: 'Success' }, { value: 'error', label: 'Error' }]} onChange={(v) => { setFilters('status', v); setApplied({ ...filters }); }} />
          <SelectField<CachedFilter> label="Cache" value={filters.cached} options={[{ value: '', label: 'Cached or not' }, { value: 'yes', label: 'Cache hits' }, { value: 'no', label: 'Not cached' }]} onChange={(v) => { setFilters('cached', v); setApplied({ ...filters }); }} />
          <TextField label="Model" value={filters.model} onInput={(v) => setFilters('model', v)} placeholder="gpt-4o-mini" />
          <TextField label="Provider" value={filters.provider} onInput={(v) => setFilters('provider', v)} placeholder="openai" />
          <div class="log-filter-submit">
            <Button type="submit">Apply</Button>
          </div>
        </form>
        <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
          <Show when={state.items.length > 0} fallback={<EmptyState title="No requests match"><p class="muted">Calls made with a project API key appear here.</p></EmptyState>}>
            <div class="table-wrap">
              <table class="table table-stack table-compact" data-testid="logs">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Model</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">Tokens in / out</th>
                    <th scope="col" class="num">Cost</th>
                    <th scope="col" class="num">Latency</th>
                    <th scope="col" class="hide-sm">Key</th>
                    <th scope="col">
                      <span class="sr-only">Details</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(l) => (
                      <tr classList={{ 'row-selected': selected() === l.id }}>
                        <td class="nowrap">{formatDateTime(l.createdAt)}</td>
                        <td data-label="Model">
                          <span class="cell-title">{l.model}</span> <span class="muted small">{l.provider}</span>
                        </td>
                        <td data-label="Status">
                          <StatusBadges log={l} />
                        </td>
                        <td class="num" data-label="Tokens">
                          {formatCount(l.inputTokens)} / {formatCount(l.outputTokens)}
                        </td>
                        <td class="num" data-label="Cost">{formatCost(l.cost)}</td>
                        <td class="num" data-label="Latency">{formatMs(l.latencyMs)}</td>
                        <td class="hide-sm">{l.apiKey.name ?? '—'}</td>
                        <td class="row-actions">
                          <Button size="sm" variant="ghost" aria-expanded={selected() === l.id} onClick={() => setSelected(selected() === l.id ? null : l.id)}>
                            {selected() === l.id ? 'Hide' : 'Details'}
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
      <Show when={selected()}>{(id) => <LogDetail orgId={ctx.orgId()} logId={id()} onClose={() => setSelected(null)} />}</Show>
    </div>
  );
}

function StatusBadges(props: { log: Pick<Log, 'status' | 'cached' | 'streamed' | 'canceled'> }) {
  return (
    <span class="badges">
      <Badge tone={props.log.status >= 400 ? 'danger' : 'success'}>{props.log.status}</Badge>
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

function LogDetail(props: { orgId: string; logId: string; onClose: () => void }) {
  const [log, { refetch }] = createResource(() => props.logId, (logId) => api.logs.get.query({ orgId: props.orgId, logId }));
  let ref: HTMLElement | undefined;
  createEffect(on(() => props.logId, () => queueMicrotask(() => ref?.scrollIntoView({ block: 'nearest', behavior: 'smooth' }))));
  return (
    <div ref={(el) => (ref = el)} data-testid="log-detail">
      <Card title={`Request ${props.logId}`} actions={<Button size="sm" variant="ghost" onClick={props.onClose}>Close</Button>}>
        <Show when={!log.error} fallback={<ErrorState error={log.error} retry={() => void refetch()} />}>
          <Show when={log.latest} fallback={<Loading />}>
            {(l) => (
              <>
                <dl class="facts">
                  <div><dt>Time</dt><dd>{formatDateTime(l().createdAt)}</dd></div>
                  <div><dt>Model</dt><dd>{l().provider}/{l().model}</dd></div>
                  <div><dt>Status</dt><dd><StatusBadges log={l()} /></dd></div>
                  <div><dt>API key</dt><dd>{l().apiKey.name ?? '—'} <span class="muted small">{l().apiKey.prefix ? `${l().apiKey.prefix}…` : ''}</span></dd></div>
                  <div><dt>Input tokens</dt><dd>{formatCount(l().inputTokens)}</dd></div>
                  <div><dt>Cached input tokens</dt><dd>{formatCount(l().cachedTokens)}</dd></div>
                  <Show when={l().cacheWriteTokens > 0}>
                    <div><dt>Cache-write input tokens</dt><dd>{formatCount(l().cacheWriteTokens)}</dd></div>
                  </Show>
                  <div><dt>Output tokens</dt><dd>{formatCount(l().outputTokens)}</dd></div>
                  <div><dt>Cost</dt><dd>{formatCost(l().cost)} <span class="muted small">paid by {l().paidBy}</span></dd></div>
                  <div><dt>Latency</dt><dd>{formatMs(l().latencyMs)}</dd></div>
                  <div><dt>Time to first token</dt><dd>{formatMs(l().ttftMs)}</dd></div>
                  <div><dt>Streamed</dt><dd>{l().streamed ? 'Yes' : 'No'}</dd></div>
                  <div><dt>Canceled</dt><dd>{l().canceled ? 'Yes' : 'No'}</dd></div>
                </dl>
                <Show when={l().error}>
                  <div class="callout callout-danger" role="note">
                    <p><strong>Error:</strong> {l().error}</p>
                  </div>
                </Show>
                <Show
                  when={l().requestBody != null || l().responseBody != null}
                  fallback={<p class="muted small">Bodies are stored only while the organization's retention level is “retain”.</p>}
                >
                  <div class="grid grid-2">
                    <div>
                      <h3 class="body-title">Request body</h3>
                      <pre class="code-block" tabindex="0">{JSON.stringify(l().requestBody, null, 2)}</pre>
                    </div>
                    <div>
                      <h3 class="body-title">Response body</h3>
                      <pre class="code-block" tabindex="0">{JSON.stringify(l().responseBody, null, 2)}</pre>
                    </div>
                  </div>
                </Show>
              </>
            )}
          </Show>
        </Show>
      </Card>
    </div>
  );
}
