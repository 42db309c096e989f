/** API keys of a project: list, create (shown once, with a snippet), revoke (own keys, or any for owners/admins). */
import { createEffect, createResource, createSignal, For, on, onCleanup, Show } from 'solid-js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { me } from '../state/session.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, CopyField, createAction, EmptyState, ErrorState, Loading, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDate, formatDateTime } from '../ui/format.js';
import { toast } from '../ui/toast.js';

type ApiKey = RouterOutputs['apiKey']['list'][number];

export function ApiKeysPage() {
  const ctx = useOrg();
  const [projects, { refetch: refetchProjects }] = createResource(() => ctx.orgId(), (orgId) => api.project.list.query({ orgId }));
  const projectList = () => (projects.state === 'errored' ? [] : (projects.latest ?? []));
  const [projectId, setProjectId] = createSignal('');
  createEffect(() => {
    const list = projectList();
    if (list.length && !list.some((p) => p.id === projectId())) setProjectId((list.find((p) => p.isDefault) ?? list[0]!).id);
  });
  const [creating, setCreating] = createSignal(false);
  const [created, setCreated] = createSignal<{ name: string; key: string } | null>(null);
  const { state, load, reset } = createReloadingList(async () => {
    const pid = projectId();
    if (!pid) return null;
    const list = await api.apiKey.list.query({ projectId: pid });
    // Another project was chosen meanwhile: this answer is not the one on screen.
    return pid === projectId() ? list : null;
  });
  createEffect(
    on(projectId, (pid) => {
      reset();
      setCreated(null);
      if (pid) void load();
    }),
  );
  // Last-used times move with traffic; keys may be created or revoked elsewhere: refresh, throttled.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const refreshSoon = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void load();
    }, 2000);
  };
  onCleanup(() => clearTimeout(timer));
  ctx.onEvent((e) => {
    if (e.type === 'usage') refreshSoon();
    // Created or revoked by another member (or in another tab): show it at once.
    if (e.type === 'apiKey.changed' && e.projectId === projectId()) void load();
    if (e.type.startsWith('project.')) void refetchProjects();
  });
  

  const canRevoke = (k: ApiKey) => k.status === 'active' && (ctx.can('apiKey.revokeAny') || k.createdBy?.id === me()?.id);

  return (
    <div class="page">
      <PageHeader
        title="API keys"
        description="Keys for the gateway's OpenAI-compatible API. Each key belongs to a project."
        actions={
          <Button variant="primary" onClick={() => { setCreated(null); setCreating(true); }} disabled={creating() || !projectId()}>
            New API key
          </Button>
        }
      />
      <div class="toolbar">
        <div class="toolbar-filter">
          <Show when={!projects.loading || projectList().length} fallback={<Loading label="Loading projects…" />}>
            <SelectField label="Project" value={projectId()} options={projectList().map((p) => ({ value: p.id, label: p.name }))} onChange={setProjectId} />
          </Show>
        </div>
      </div>
      <Show when={projects.error}>
        <ErrorState error={projects.error} />
      </Show>
      <Show when={creating()}>
        <CreateKeyForm
          projectId={projectId()}
          onDone={(result) => {
            setCreating(false);
            if (result) {
              setCreated(result);
              void load();
            }
          }}
        />
      </Show>
      <Show when={created()}>{(c) => <NewKeyCallout name={c().name} apiKey={c().key} onClose={() => setCreated(null)} />}</Show>
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()} loading={<Show when={projectId()}><Loading /></Show>}>
        <Show when={state.items.length > 0} fallback={<EmptyState title="No API keys in this project yet"><p class="muted">Create one to call the gateway with the OpenAI SDK.</p></EmptyState>}>
          <Card>
            <div class="table-wrap">
              <table class="table table-stack" data-testid="api-keys">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Key</th>
                    <th scope="col">Created by</th>
                    <th scope="col">Last used</th>
                    <th scope="col" class="hide-sm">Created</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(k) => <KeyRow apiKey={k} canRevoke={canRevoke(k)} onChanged={() => void load()} />}
                  </For>
                </tbody>
              </table>
            </div>
          </Card>
        </Show>
      </LoadState>
    </div>
  );
}

function KeyRow(props: { apiKey: ApiKey; canRevoke: boolean; onChanged: () => void }) {
  const k = () => props.apiKey;
  const [revoking, revoke] = createAction(async () => {
    const ok = await confirmAction({
      title: `Revoke “${k().name}”?`,
      body: 'Requests with this key are refused at once, on every instance. This cannot be undone.',
      confirmLabel: 'Revoke key',
      danger: true,
    });
    if (!ok) return;
    await api.apiKey.revoke.mutate({ apiKeyId: k().id });
    toast.success(`Key “${k().name}” revoked.`);
    props.onChanged();
  });
  return (
    <tr classList={{ 'row-void': k().status === 'revoked' }}>
      <td>
        <span class="cell-title">{k().name}</span>{' '}
        <Show when={k().status === 'revoked'}>
          <Badge tone="danger">Revoked</Badge>
        </Show>
        <Show when={k().rpmLimit}>
          <span class="muted small"> · {k().rpmLimit} req/min</span>
        </Show>
      </td>
      <td data-label="Key">
        <code class="mono">{k().prefix}…</code>
      </td>
      <td data-label="Created by">{k().createdBy?.name || k().createdBy?.email || '—'}</td>
      <td data-label="Last used" class="nowrap">{k().lastUsedAt ? formatDateTime(k().lastUsedAt) : 'Never'}</td>
      <td class="nowrap hide-sm">{formatDate(k().createdAt)}</td>
      <td class="row-actions">
        <Show when={props.canRevoke}>
          <Button size="sm" variant="ghost" class="text-danger" loading={revoking()} onClick={() => void revoke()}>
            Revoke<span class="sr-only"> {k().name}</span>
          </Button>
        </Show>
      </td>
    </tr>
  );
}

function CreateKeyForm(props: { projectId: string; onDone: (created: { name: string; key: string } | null) => void }) {
  const [name, setName] = createSignal('');
  const [error, setError] = createSignal<string | undefined>();
  const [pending, run] = createAction(
    async () => {
      if (!name().trim()) return setError('Key name is required');
      const { apiKey, key } = await api.apiKey.create.mutate({ projectId: props.projectId, name: name().trim() });
      toast.success(`Key “${apiKey.name}” created.`);
      props.onDone({ name: apiKey.name, key });
    },
    { onError: (err) => setError(fieldErrorsOf(err).name ?? errorMessage(err)) },
  );
  return (
    <Card title="New API key">
      <form
        class="inline-form"
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <TextField label="Key name" value={name()} onInput={setName} error={error()} placeholder="e.g. Production backend" autofocus />
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={pending()}>
            Create key
          </Button>
          <Button onClick={() => props.onDone(null)}>Cancel</Button>
        </div>
      </form>
    </Card>
  );
}

function NewKeyCallout(props: { name: string; apiKey: string; onClose: () => void }) {
  const snippet = () => `import OpenAI from 'openai';

const apiKey = '${props.apiKey}';
const client = new OpenAI({ baseURL: '${location.origin}/v1', apiKey });
const completion = await client.chat.completions.create({
  model: 'openai/gpt-4o-mini',
  messages: [{ role: 'user', content: 'Hello!' }],
});`;
  return (
    <Card title={`Your new key “${props.name}”`} description="Copy it now: it is shown only once. We store only a hash." class="new-key" actions={<Button size="sm" variant="ghost" onClick={props.onClose}>Done</Button>}>
      <CopyField label="API key" value={props.apiKey} testId="new-api-key" />
      <CopyField label="Base URL" value={`${location.origin}/v1`} />
      <p class="field-hint">Use it with the official OpenAI SDK; only the base URL and the key change:</p>
      <pre class="code-block" tabindex="0" aria-label="Example code">{snippet()}</pre>
    </Card>
  );
}
