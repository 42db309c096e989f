/**
 * Audit log: who did what, in words (shared/audit-actions.ts), with only the fields a change
 * touched; filtered by actor, action and time; newest first, paged by cursor, live: new entries
 * come in on top while the reader is at the top, and wait behind an "N new" control otherwise.
 */
import { createEffect, createResource, createSignal, For, on, Show } from 'solid-js';
import { createAtTop } from '../state/scroll.js';
import { createStore } from 'solid-js/store';
import { AUDIT_ACTIONS, AUDIT_FIELD_LABELS, AUDIT_GROUP_LABELS, changedFields, describeAuditAction, type AuditGroup } from '../../../shared/audit-actions.js';
import { api, type RouterOutputs } from '../api.js';
import { createCursorList, createThrottle } from '../state/cursor-list.js';
import { useOrg } from '../state/org-context.js';
import { Button, Card, createAction, EmptyState, Field, LoadMoreFooter, LoadState, PageHeader, SelectField } from '../ui/components.js';
import { formatDateTime } from '../ui/format.js';
import './records.css';

type Entry = RouterOutputs['audit']['list']['items'][number];
type RangeFilter = '' | '24h' | '7d' | '30d' | '90d';
const DAY = 86_400_000;
const RANGE_MS: Record<Exclude<RangeFilter, ''>, number> = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '90d': 90 * DAY };
const PAGE_SIZE = 50;

const GROUPS = Object.keys(AUDIT_GROUP_LABELS) as AuditGroup[];
const actionsOf = (group: AuditGroup) => Object.entries(AUDIT_ACTIONS).filter(([, a]) => a.group === group).map(([id]) => id);

const VALUE_WORDS: Record<string, Record<string, string>> = {
  retentionLevel: { retain: 'Kept', none: 'Not kept' },
  role: { owner: 'Owner', admin: 'Admin', developer: 'Developer' },
  plan: { free: 'Free', pro: 'Pro', enterprise: 'Enterprise' },
  billingCycle: { monthly: 'Monthly', yearly: 'Yearly' },
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function describeValue(key: string, v: unknown): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? 'On' : 'Off';
  if (Array.isArray(v)) return v.length ? v.map((x) => describeValue(key, x)).join(', ') : 'none';
  if (typeof v === 'object') return JSON.stringify(v);
  const text = String(v);
  if (VALUE_WORDS[key]?.[text]) return VALUE_WORDS[key][text]!;
  if (UUID.test(text)) return `${text.slice(0, 8)}…`;
  if (['amount', 'threshold', 'spent'].includes(key) && /^-?\d+(\.\d+)?$/.test(text)) return `$${text}`;
  return text;
}

function Changes(props: { entry: Entry }) {
  const fields = () => changedFields(props.entry);
  return (
    <Show when={fields().length > 0} fallback={<span class="changes-none">—</span>}>
      <ul class="changes">
        <For each={fields()}>
          {(f) => (
            <li>
              <span class="change-key">{AUDIT_FIELD_LABELS[f.key] ?? f.key}</span>{' '}
              <Show when={f.hadBefore && props.entry.after !== null && props.entry.before !== null}>
                <del>{describeValue(f.key, f.before)}</del>
                <span aria-hidden="true"> → </span>
                <span class="sr-only"> to </span>
              </Show>
              <Show when={f.hasAfter} fallback={<del>{describeValue(f.key, f.before)}</del>}>
                <ins>{describeValue(f.key, f.after)}</ins>
              </Show>
            </li>
          )}
        </For>
      </ul>
    </Show>
  );
}

interface Filters {
  actorId: string;
  /** '' (any), 'group:<group>' or an action id. */
  action: string;
  range: RangeFilter;
}

export function AuditPage() {
  const ctx = useOrg();
  return (
    <Show
      when={ctx.can('audit.view')}
      fallback={
        <div class="page">
          <PageHeader title="Audit log" />
          <p class="role-note">Only owners and admins can view the audit log.</p>
        </div>
      }
    >
      <AuditContent />
    </Show>
  );
}

function AuditContent() {
  const ctx = useOrg();
  const [filters, setFilters] = createStore<Filters>({ actorId: '', action: '', range: '' });
  const [applied, setApplied] = createSignal<Filters>({ ...filters });
  const set = <K extends keyof Filters>(key: K, value: Filters[K]) => {
    setFilters(key, value);
    setApplied({ ...filters });
  };
  const [actors, { refetch: refetchActors }] = createResource(() => ctx.orgId(), (orgId) => api.audit.actors.query({ orgId }));

  const query = () => {
    const f = applied();
    const actions = f.action.startsWith('group:') ? actionsOf(f.action.slice(6) as AuditGroup) : f.action ? [f.action] : [];
    return {
      orgId: ctx.orgId(),
      limit: PAGE_SIZE,
      ...(f.actorId ? { actorId: f.actorId } : {}),
      ...(actions.length ? { actions } : {}),
      ...(f.range ? { from: new Date(Date.now() - RANGE_MS[f.range]) } : {}),
    };
  };
  const list = createCursorList<Entry>({ key: applied, fetch: (cursor) => api.audit.list.query({ ...query(), ...(cursor ? { cursor } : {}) }) });
  const { state, loadFirst } = list;
  createEffect(
    on(applied, () => {
      list.reset();
      setPending(0);
      void loadFirst();
    }),
  );

  // Live: entries come with the events of the changes they record.
  const atTop = createAtTop();
  const [pending, setPending] = createSignal(0);
  const [fresh, setFresh] = createSignal<ReadonlySet<string>>(new Set());
  const merge = async () => {
    const arrived = await list.mergeNewest();
    setPending(0);
    if (arrived.length) {
      setFresh(new Set([...fresh(), ...arrived]));
      setTimeout(() => setFresh((s) => new Set([...s].filter((id) => !arrived.includes(id)))), 4000);
      void refetchActors();
    }
  };
  const checkNew = async () => {
    if (!state.loaded) return;
    if (atTop()) return merge();
    const key = applied();
    const page = await api.audit.list.query(query()).catch(() => null);
    if (!page || key !== applied()) return;
    const top = state.items[0]?.id;
    setPending((top ? page.items.filter((i) => BigInt(i.id) > BigInt(top)) : page.items).length);
  };
  const checkSoon = createThrottle(() => void checkNew(), 1000);
  ctx.onEvent((e) => {
    if (e.type !== 'presence' && e.type !== 'usage') checkSoon();
  });
  createEffect(on(atTop, (top) => top && pending() > 0 && void merge(), { defer: true }));
  const [loadingMore, loadMore] = createAction(() => list.loadMore());

  const actorOptions = () => [
    { value: '', label: 'Anyone' },
    ...(actors.latest?.actors ?? []).map((a) => ({ value: a.id, label: a.name || a.email })),
    ...(actors.latest?.system ? [{ value: 'system', label: 'System (jobs, payments)' }] : []),
  ];
  const filtered = () => applied().actorId !== '' || applied().action !== '' || applied().range !== '';

  return (
    <div class="page">
      <PageHeader title="Audit log" description="Every change to this organization: who made it, when, and what it changed." />
      <Card>
        <div class="audit-filters" role="group" aria-label="Filters">
          <SelectField label="Actor" value={filters.actorId} options={actorOptions()} onChange={(v) => set('actorId', v)} />
          <Field label="Action">
            {(id) => (
              <select id={id} class="input" value={filters.action} onChange={(e) => set('action', e.currentTarget.value)}>
                <option value="">Any action</option>
                <For each={GROUPS}>
                  {(g) => (
                    <optgroup label={AUDIT_GROUP_LABELS[g]}>
                      <option value={`group:${g}`}>All: {AUDIT_GROUP_LABELS[g].toLowerCase()}</option>
                      <For each={actionsOf(g)}>{(a) => <option value={a}>{AUDIT_ACTIONS[a]!.label}</option>}</For>
                    </optgroup>
                  )}
                </For>
              </select>
            )}
          </Field>
          <SelectField<RangeFilter>
            label="Time"
            value={filters.range}
            options={[{ value: '', label: 'Any time' }, { value: '24h', label: 'Last 24 hours' }, { value: '7d', label: 'Last 7 days' }, { value: '30d', label: 'Last 30 days' }, { value: '90d', label: 'Last 90 days' }]}
            onChange={(v) => set('range', v)}
          />
          <Show when={filtered()}>
            <div class="log-filter-submit">
              <Button
                variant="ghost"
                onClick={() => {
                  setFilters({ actorId: '', action: '', range: '' });
                  setApplied({ ...filters });
                }}
              >
                Clear filters
              </Button>
            </div>
          </Show>
        </div>
        <LoadState loaded={state.loaded} error={state.error} retry={() => void loadFirst()}>
          <Show when={pending() > 0}>
            <div class="new-rows-bar">
              <Button variant="primary" size="sm" data-testid="audit-new" onClick={() => void merge().then(() => window.scrollTo({ top: 0 }))}>
                {pending()} new {pending() === 1 ? 'entry' : 'entries'}
              </Button>
            </div>
          </Show>
          <Show when={state.items.length > 0} fallback={<EmptyState title={filtered() ? 'No entries match these filters' : 'Nothing recorded yet'} />}>
            <div class="table-wrap">
              <table class="table table-stack" data-testid="audit">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Who</th>
                    <th scope="col">What</th>
                    <th scope="col">Changes</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(entry) => (
                      <tr classList={{ 'row-new': fresh().has(entry.id) }} data-action={entry.action}>
                        <td data-label="Time" class="nowrap">
                          {formatDateTime(entry.createdAt)}
                        </td>
                        <td data-label="Who">
                          <Show when={entry.actor} fallback={<span class="muted">System</span>}>
                            {(actor) => (
                              <div>
                                <div class="cell-title">{actor().name || actor().email}</div>
                                <Show when={actor().name}>
                                  <div class="muted small">{actor().email}</div>
                                </Show>
                              </div>
                            )}
                          </Show>
                        </td>
                        <td data-label="What">
                          <div>
                            <div class="audit-sentence" title={entry.action}>
                              {describeAuditAction(entry.action, entry)}
                            </div>
                            <Show when={entry.target.name && !describeAuditAction(entry.action, entry).includes(entry.target.name!)}>
                              <div class="audit-target">{entry.target.name}</div>
                            </Show>
                          </div>
                        </td>
                        <td data-label="Changes">
                          <Changes entry={entry} />
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
    </div>
  );
}
