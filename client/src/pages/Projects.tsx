/** Projects: list, create, rename, mode and caching, routing, delete (never the last one). */
import { createSignal, For, onMount, Show } from 'solid-js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { projectCreateInput, projectName, projectUpdateInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, createAction, EmptyState, LoadState, PageHeader, TextField } from '../ui/components.js';
import { formatDate } from '../ui/format.js';
import { validate } from '../ui/forms.js';
import { toast } from '../ui/toast.js';
import { createProjectLimit, LimitNote } from './plan-limit.js';
import { ProjectRoutingCard } from './ProjectRouting.js';

type Project = RouterOutputs['project']['list'][number];
type Mode = Project['mode'];

const MODES: { value: Mode; label: string; help: string }[] = [
  { value: 'hybrid', label: 'Hybrid', help: 'Provider keys when configured, otherwise credits' },
  { value: 'credits', label: 'Credits', help: 'Always bill requests to the organization’s credits' },
  { value: 'provider-keys', label: 'Provider keys', help: 'Only use the organization’s own provider keys' },
];
const modeLabel = (m: Mode) => MODES.find((x) => x.value === m)?.label ?? m;

export function ProjectsPage() {
  const ctx = useOrg();
  const { state, load } = createReloadingList(() => api.project.list.query({ orgId: ctx.orgId() }));
  const [creating, setCreating] = createSignal(false);
  const projectLimit = createProjectLimit();

  onMount(() => void load());
  ctx.onEvent((e) => {
    if (e.type === 'project.created' || e.type === 'project.updated' || e.type === 'project.deleted') void load();
  });
  const canManage = () => ctx.can('project.manage');

  return (
    <div class="page">
      <PageHeader
        title="Projects"
        description="Projects group gateway API keys and settings such as response caching."
        actions={
          <Show when={canManage()}>
            <Button variant="primary" onClick={() => setCreating(true)} disabled={creating() || !!projectLimit.reason()} title={projectLimit.reason() ?? undefined}>
              New project
            </Button>
          </Show>
        }
      />
      <Show when={canManage()}>
        <LimitNote reason={projectLimit.reason()} billingHref={ctx.can('billing.manage') ? `/org/${ctx.orgId()}/billing#plan` : null} testId="project-limit" />
      </Show>
      <Show when={!canManage()}>
        <p class="role-note">Your role ({ROLE_LABELS[ctx.role() ?? 'developer']}) can view projects and create API keys. Owners and admins manage projects.</p>
      </Show>
      <Show when={creating() && canManage() && !projectLimit.reason()}>
        <CreateProjectForm orgId={ctx.orgId()} onDone={(created) => { setCreating(false); if (created) void load(); }} />
      </Show>
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
        <Show when={state.items.length > 0} fallback={<EmptyState title="No projects yet" />}>
          <Card>
            <div class="table-wrap">
              <table class="table table-stack">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Mode</th>
                    <th scope="col">Caching</th>
                    <th scope="col" title="Browser origins allowed to call /v1 with this project's keys (CORS)">Browser origins</th>
                    <th scope="col" class="hide-sm">Created</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(p) => <ProjectRow project={p} canManage={canManage()} isLast={state.items.length <= 1} onChanged={() => void load()} />}
                  </For>
                </tbody>
              </table>
            </div>
          </Card>
          <ProjectRoutingCard projects={state.items} onSaved={() => void load()} />
        </Show>
      </LoadState>
    </div>
  );
}

function CreateProjectForm(props: { orgId: string; onDone: (created: boolean) => void }) {
  const [name, setName] = createSignal('');
  const [error, setError] = createSignal<string | undefined>();
  const [pending, run] = createAction(async () => {
    const checked = validate(projectCreateInput, { orgId: props.orgId, name: name() });
    if (!checked.ok) return setError(checked.errors.name);
    const project = await api.project.create.mutate(checked.data);
    toast.success(`Project “${project.name}” created.`);
    props.onDone(true);
  }, { onError: (err) => setError(fieldErrorsOf(err).name ?? errorMessage(err)) });
  return (
    <Card title="New project">
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
        novalidate
      >
        <TextField label="Project name" value={name()} onInput={setName} error={error()} placeholder="e.g. Support bot" autofocus />
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={pending()}>
            Create project
          </Button>
          <Button onClick={() => props.onDone(false)}>Cancel</Button>
        </div>
      </form>
    </Card>
  );
}

function ProjectRow(props: { project: Project; canManage: boolean; isLast: boolean; onChanged: () => void }) {
  const [renaming, setRenaming] = createSignal(false);
  const [draft, setDraft] = createSignal('');
  const [renameError, setRenameError] = createSignal<string | undefined>();
  const [ttlDraft, setTtlDraft] = createSignal<string | null>(null);
  const [originsDraft, setOriginsDraft] = createSignal<string | null>(null);

  const [saving, update] = createAction(async (patch: { name?: string; mode?: Mode; cachingEnabled?: boolean; cacheTtlSeconds?: number; allowedOrigins?: string[] }, success: string) => {
    const checked = validate(projectUpdateInput, { projectId: props.project.id, ...patch });
    if (!checked.ok) {
      toast.error(Object.values(checked.errors)[0] ?? 'Check the values.');
      return false;
    }
    await api.project.update.mutate(checked.data);
    toast.success(success);
    props.onChanged();
    return true;
  });

  const [renamePending, rename] = createAction(
    async () => {
      const checked = validate(projectName, draft());
      if (!checked.ok) return setRenameError(Object.values(checked.errors)[0]);
      await api.project.update.mutate({ projectId: props.project.id, name: checked.data });
      toast.success(`Renamed to “${checked.data}”.`);
      setRenaming(false);
      props.onChanged();
    },
    { onError: (err) => setRenameError(fieldErrorsOf(err).name ?? errorMessage(err)) },
  );

  const [deleting, remove] = createAction(async () => {
    const ok = await confirmAction({
      title: `Delete “${props.project.name}”?`,
      body: 'Its API keys stop working at once. Usage history stays in analytics. This cannot be undone.',
      confirmLabel: 'Delete project',
      danger: true,
    });
    if (!ok) return;
    await api.project.delete.mutate({ projectId: props.project.id });
    toast.success(`Project “${props.project.name}” deleted.`);
    props.onChanged();
  });

  const saveTtl = () => {
    const raw = ttlDraft();
    setTtlDraft(null);
    if (raw === null || Number(raw) === props.project.cacheTtlSeconds) return;
    void update({ cacheTtlSeconds: Number(raw) }, 'Cache lifetime updated.');
  };

  // Allowed origins, written one per line or separated by commas or spaces; empty allows any origin.
  const saveOrigins = () => {
    const raw = originsDraft();
    setOriginsDraft(null);
    if (raw === null) return;
    const origins = raw.split(/[\s,]+/).filter(Boolean);
    if (origins.join(' ') === props.project.allowedOrigins.join(' ')) return;
    void update({ allowedOrigins: origins }, origins.length ? 'Allowed origins updated.' : 'Any origin may call the gateway with this project’s keys.');
  };

  return (
    <tr>
      <td>
        <Show
          when={renaming()}
          fallback={
            <span class="cell-title">
              {props.project.name} <Show when={props.project.isDefault}><Badge>Default</Badge></Show>
            </span>
          }
        >
          <form
            class="rename-form"
            onSubmit={(e) => {
              e.preventDefault();
              void rename();
            }}
            onKeyDown={(e) => e.key === 'Escape' && setRenaming(false)}
          >
            <TextField label="New name" value={draft()} onInput={setDraft} error={renameError()} autofocus />
            <div class="form-actions">
              <Button type="submit" variant="primary" size="sm" loading={renamePending()}>
                Save
              </Button>
              <Button size="sm" onClick={() => setRenaming(false)}>
                Cancel
              </Button>
            </div>
          </form>
        </Show>
      </td>
      <td data-label="Mode">
        <Show when={props.canManage} fallback={<span title={MODES.find((m) => m.value === props.project.mode)?.help}>{modeLabel(props.project.mode)}</span>}>
          <select
            class="input input-sm"
            aria-label={`Mode of ${props.project.name}`}
            value={props.project.mode}
            disabled={saving()}
            onChange={(e) => void update({ mode: e.currentTarget.value as Mode }, `Mode set to ${modeLabel(e.currentTarget.value as Mode)}.`)}
          >
            <For each={MODES}>{(m) => <option value={m.value} title={m.help}>{m.label}</option>}</For>
          </select>
        </Show>
      </td>
      <td data-label="Caching">
        <Show
          when={props.canManage}
          fallback={<span>{props.project.cachingEnabled ? `On · ${props.project.cacheTtlSeconds}s` : 'Off'}</span>}
        >
          <div class="caching-cell">
            <label class="checkbox">
              <input
                type="checkbox"
                checked={props.project.cachingEnabled}
                disabled={saving()}
                onChange={(e) =>
                  void update({ cachingEnabled: e.currentTarget.checked }, e.currentTarget.checked ? 'Response caching on.' : 'Response caching off.')
                }
              />
              <span>{props.project.cachingEnabled ? 'On' : 'Off'}</span>
            </label>
            <Show when={props.project.cachingEnabled}>
              <label class="ttl">
                <span class="sr-only">Cache lifetime of {props.project.name} in seconds</span>
                <input
                  class="input input-sm input-num"
                  type="number"
                  min="10"
                  max={String(86400 * 30)}
                  value={ttlDraft() ?? String(props.project.cacheTtlSeconds)}
                  onInput={(e) => setTtlDraft(e.currentTarget.value)}
                  onBlur={saveTtl}
                  onKeyDown={(e) => e.key === 'Enter' && saveTtl()}
                />
                <span aria-hidden="true">s</span>
              </label>
            </Show>
          </div>
        </Show>
      </td>
      <td data-label="Browser origins">
        <Show when={props.canManage} fallback={<span class="muted">{props.project.allowedOrigins.length ? props.project.allowedOrigins.join(', ') : 'Any'}</span>}>
          <label class="origins">
            <span class="sr-only">Browser origins allowed for {props.project.name} (empty: any)</span>
            <input
              class="input input-sm"
              type="text"
              placeholder="Any origin"
              title="Origins such as https://app.example.com, separated by commas; empty allows any origin"
              value={originsDraft() ?? props.project.allowedOrigins.join(', ')}
              disabled={saving()}
              onInput={(e) => setOriginsDraft(e.currentTarget.value)}
              onBlur={saveOrigins}
              onKeyDown={(e) => e.key === 'Enter' && saveOrigins()}
            />
          </label>
        </Show>
      </td>
      <td class="nowrap hide-sm">{formatDate(props.project.createdAt)}</td>
      <td class="row-actions">
        <Show when={props.canManage && !renaming()}>
          <Button
            size="sm"
            variant="ghost"
            onClick={() => {
              setDraft(props.project.name);
              setRenameError(undefined);
              setRenaming(true);
            }}
          >
            Rename<span class="sr-only"> {props.project.name}</span>
          </Button>
          <Button
            size="sm"
            variant="ghost"
            class="text-danger"
            loading={deleting()}
            disabled={props.isLast}
            title={props.isLast ? 'An organization needs at least one project' : undefined}
            onClick={() => void remove()}
          >
            Delete<span class="sr-only"> {props.project.name}</span>
          </Button>
        </Show>
      </td>
    </tr>
  );
}
