/**
 * API keys of a project: list (with each key's spend against its limit, live), create (shown once,
 * with a snippet), settings (limits, rules), roll, revoke (own keys, or any for owners/admins).
 */
import { useSearchParams } from '@solidjs/router';
import { createEffect, createResource, createSignal, For, on, Show } from 'solid-js';
import type { LimitPeriod } from '../../../shared/limits.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { me } from '../state/session.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, CopyField, createAction, EmptyState, ErrorState, Loading, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDate, formatDateTime } from '../ui/format.js';
import { toast } from '../ui/toast.js';
import { createSpendRefresh, parseAmount, SpendLimitFields, SpendMeter } from '../ui/limits.js';

type ApiKey = RouterOutputs['apiKey']['list'][number];

export function ApiKeysPage() {
  const ctx = useOrg();
  const [projects, { refetch: refetchProjects }] = createResource(() => ctx.orgId(), (orgId) => api.project.list.query({ orgId }));
  const projectList = () => (projects.state === 'errored' ? [] : (projects.latest ?? []));
  const [search] = useSearchParams<{ project?: string }>();
  const [projectId, setProjectId] = createSignal('');
  createEffect(() => {
    const list = projectList();
    // A link from a limit notice names the key's project.
    const wanted = list.find((p) => p.id === search.project);
    if (wanted && !projectId()) return setProjectId(wanted.id);
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
  // Spend and last-used times move with traffic: refresh at most every 2 s while it flows.
  createSpendRefresh(ctx.onEvent, () => void load());
  ctx.onEvent((e) => {
    // Created, changed or revoked by another member (or in another tab): show it at once.
    if (e.type === 'apiKey.changed' && e.projectId === projectId()) void load();
    if (e.type.startsWith('project.')) void refetchProjects();
  });
  

  const canManage = (k: ApiKey) => k.status !== 'revoked' && (ctx.can('apiKey.revokeAny') || k.createdBy?.id === me()?.id);

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
                    <th scope="col">Spend</th>
                    <th scope="col" class="hide-sm">Created</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>
                    {(k) => (
                      <KeyRow
                        apiKey={k}
                        canManage={canManage(k)}
                        isAdmin={ctx.can('apiKey.revokeAny')}
                        onChanged={() => void load()}
                        onRolled={(result) => {
                          setCreated(result);
                          void load();
                        }}
                      />
                    )}
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

const STATUS_BADGE: Record<ApiKey['status'], { label: string; tone: 'danger' | 'warning' } | null> = {
  active: null,
  revoked: { label: 'Revoked', tone: 'danger' },
  expired: { label: 'Expired', tone: 'warning' },
  disabled: { label: 'Disabled', tone: 'warning' },
};

/** One line saying what the key may do: rate, expiry, allowed models and providers. */
function restrictions(k: ApiKey): string[] {
  const out: string[] = [];
  if (k.rpmLimit) out.push(`${k.rpmLimit} req/min`);
  if (k.expiresAt && k.status !== 'expired') out.push(`expires ${formatDateTime(k.expiresAt)}`);
  if (k.allowedProviders) out.push(`providers: ${k.allowedProviders.join(', ')}`);
  if (k.allowedModels) out.push(`models: ${k.allowedModels.join(', ')}`);
  if (k.previousSecretValidUntil) out.push(`old secret valid until ${formatDateTime(k.previousSecretValidUntil)}`);
  return out;
}

function KeyRow(props: { apiKey: ApiKey; canManage: boolean; isAdmin: boolean; onChanged: () => void; onRolled: (created: { name: string; key: string }) => void }) {
  const k = () => props.apiKey;
  const [editing, setEditing] = createSignal(false);
  const [rolling, setRolling] = createSignal(false);
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
  const badge = () => STATUS_BADGE[k().status];
  return (
    <>
      <tr classList={{ 'row-void': k().status === 'revoked' }} data-testid={`api-key-${k().id}`}>
        <td>
          <span class="cell-title">{k().name}</span>{' '}
          <Show when={badge()}>{(b) => <Badge tone={b().tone}>{b().label}</Badge>}</Show>
          <Show when={restrictions(k()).length > 0}>
            <div class="muted small">{restrictions(k()).join(' · ')}</div>
          </Show>
        </td>
        <td data-label="Key">
          <code class="mono">{k().prefix}…</code>
        </td>
        <td data-label="Created by">{k().createdBy?.name || k().createdBy?.email || '—'}</td>
        <td data-label="Last used" class="nowrap">{k().lastUsedAt ? formatDateTime(k().lastUsedAt) : 'Never'}</td>
        <td data-label="Spend">
          <SpendMeter
            spent={k().spent}
            limit={k().spendLimit?.amount}
            period={k().spendLimit?.period}
            resetsAt={k().resetsAt}
            label={`Spend of ${k().name} against its limit`}
            testId={`key-spend-${k().id}`}
          />
        </td>
        <td class="nowrap hide-sm">{formatDate(k().createdAt)}</td>
        <td class="row-actions">
          <Show when={props.canManage}>
            <Button size="sm" variant="ghost" aria-expanded={editing()} onClick={() => { setRolling(false); setEditing(!editing()); }}>
              Settings<span class="sr-only"> of {k().name}</span>
            </Button>
            <Button size="sm" variant="ghost" aria-expanded={rolling()} onClick={() => { setEditing(false); setRolling(!rolling()); }}>
              Roll<span class="sr-only"> {k().name}</span>
            </Button>
            <Button size="sm" variant="ghost" class="text-danger" loading={revoking()} onClick={() => void revoke()}>
              Revoke<span class="sr-only"> {k().name}</span>
            </Button>
          </Show>
        </td>
      </tr>
      <Show when={editing()}>
        <tr class="row-detail">
          <td colspan="7">
            <KeySettingsForm apiKey={k()} isAdmin={props.isAdmin} onDone={(changed) => { setEditing(false); if (changed) props.onChanged(); }} />
          </td>
        </tr>
      </Show>
      <Show when={rolling()}>
        <tr class="row-detail">
          <td colspan="7">
            <RollKeyForm apiKey={k()} onDone={(result) => { setRolling(false); if (result) props.onRolled(result); }} />
          </td>
        </tr>
      </Show>
    </>
  );
}

const PROVIDER_CHOICES = ['openai', 'anthropic', 'google', 'bedrock', 'azure', 'alibaba', 'custom'] as const;
type ProviderChoice = (typeof PROVIDER_CHOICES)[number];
const PROVIDER_NAMES: Record<ProviderChoice, string> = { openai: 'OpenAI', anthropic: 'Anthropic', google: 'Google', bedrock: 'AWS Bedrock', azure: 'Azure OpenAI', alibaba: 'Alibaba Qwen', custom: 'Custom' };

/** A Date as the value of an <input type="datetime-local"> in the browser's time zone. */
function localInputValue(d: Date | null): string {
  if (!d) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

function KeySettingsForm(props: { apiKey: ApiKey; isAdmin: boolean; onDone: (changed: boolean) => void }) {
  const k = props.apiKey;
  const [name, setName] = createSignal(k.name);
  const [rpm, setRpm] = createSignal(k.rpmLimit ? String(k.rpmLimit) : '');
  const [expires, setExpires] = createSignal(localInputValue(k.expiresAt));
  const [models, setModels] = createSignal((k.allowedModels ?? []).join(', '));
  const [providers, setProviders] = createSignal<Set<string>>(new Set(k.allowedProviders ?? []));
  const [enabled, setEnabled] = createSignal(k.enabled);
  const limit = k.spendLimit;
  const [limitAmount, setLimitAmount] = createSignal(limit?.amount ?? '');
  const [limitPeriod, setLimitPeriod] = createSignal<LimitPeriod>(limit?.period ?? 'month');
  const [errors, setErrors] = createSignal<Record<string, string | undefined>>({});
  const [pending, run] = createAction(
    async () => {
      const input: Parameters<typeof api.apiKey.update.mutate>[0] = { apiKeyId: k.id };
      if (name().trim() !== k.name) input.name = name().trim();
      const rpmValue = rpm().trim() === '' ? null : Number(rpm());
      if (rpmValue !== null && (!Number.isInteger(rpmValue) || rpmValue < 1)) return setErrors({ rpmLimit: 'Enter a whole number of requests per minute, or leave it empty for no limit' });
      if (rpmValue !== k.rpmLimit) input.rpmLimit = rpmValue;
      const expiry = expires() ? new Date(expires()) : null;
      if ((expiry?.getTime() ?? null) !== (k.expiresAt?.getTime() ?? null)) input.expiresAt = expiry;
      const modelList = models().split(/[\s,]+/).filter(Boolean);
      const nextModels = modelList.length ? modelList : null;
      if (JSON.stringify(nextModels) !== JSON.stringify(k.allowedModels)) input.allowedModels = nextModels;
      const providerList = PROVIDER_CHOICES.filter((p) => providers().has(p));
      const nextProviders = providerList.length ? providerList : null;
      if (JSON.stringify(nextProviders) !== JSON.stringify(k.allowedProviders)) input.allowedProviders = nextProviders;
      if (enabled() !== k.enabled) input.enabled = enabled();
      const amount = parseAmount(limitAmount(), { max: 1_000_000 });
      if (!amount.ok) return setErrors({ spendLimit: amount.error });
      const nextLimit = amount.value === null ? null : { amount: amount.value, period: limitPeriod() };
      const sameLimit = nextLimit === null ? limit === null : limit !== null && limit.period === nextLimit.period && Number(limit.amount) === Number(nextLimit.amount);
      if (!sameLimit) input.spendLimit = nextLimit;
      if (Object.keys(input).length === 1) return props.onDone(false);
      await api.apiKey.update.mutate(input);
      toast.success(`Key “${input.name ?? k.name}” saved.`);
      props.onDone(true);
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        const message = errorMessage(err);
        // A refusal about the spend limit (e.g. a developer raising an admin's limit) belongs next to its field.
        setErrors(Object.keys(fields).length ? fields : /spend limit|spendLimit/i.test(message) ? { spendLimit: message } : { form: message });
      },
    },
  );
  const toggleProvider = (p: string, on: boolean) => {
    const next = new Set(providers());
    if (on) next.add(p);
    else next.delete(p);
    setProviders(next);
  };
  return (
    <form
      class="key-settings"
      novalidate
      onSubmit={(e) => {
        e.preventDefault();
        setErrors({});
        void run();
      }}
    >
      <Show when={k.restrictedByAdmin && !props.isAdmin}>
        <p class="notice notice-info">An owner or admin restricted this key: you can tighten its limits, not loosen them.</p>
      </Show>
      <div class="form-grid">
        <TextField label="Name" value={name()} onInput={setName} error={errors().name} />
        <TextField label="Requests per minute" type="number" min="1" inputmode="numeric" value={rpm()} onInput={setRpm} error={errors().rpmLimit} hint="Empty: no limit." />
        <TextField label="Expires" type="datetime-local" value={expires()} onInput={setExpires} error={errors().expiresAt} hint="Empty: never. Your time zone." />
        <SpendLimitFields
          amount={limitAmount()}
          period={limitPeriod()}
          onAmount={setLimitAmount}
          onPeriod={setLimitPeriod}
          error={errors().spendLimit}
          testId="key-spend-limit"
          hint={
            k.restrictedByAdmin && !props.isAdmin
              ? 'Set by an owner or admin: you can lower it, not raise or remove it.'
              : 'What this key may spend, credits or provider keys alike. Empty: no limit. Periods are UTC.'
          }
        />
        <TextField
          label="Allowed models"
          value={models()}
          onInput={setModels}
          error={errors().allowedModels}
          placeholder="any model"
          hint="Comma-separated: provider/model, provider/* or a model id. Empty: any."
        />
      </div>
      <fieldset class="fieldset">
        <legend>Allowed providers</legend>
        <p class="field-hint">None checked: any provider.</p>
        <div class="checkbox-row">
          <For each={PROVIDER_CHOICES}>
            {(p) => (
              <label class="checkbox">
                <input type="checkbox" checked={providers().has(p)} onChange={(e) => toggleProvider(p, e.currentTarget.checked)} />
                <span>{PROVIDER_NAMES[p]}</span>
              </label>
            )}
          </For>
        </div>
        <Show when={errors().allowedProviders}>
          <p class="field-error">{errors().allowedProviders}</p>
        </Show>
      </fieldset>
      <label class="checkbox">
        <input type="checkbox" checked={enabled()} onChange={(e) => setEnabled(e.currentTarget.checked)} />
        <span>Enabled (a disabled key is refused until enabled again)</span>
      </label>
      <Show when={errors().form}>
        <p class="field-error" role="alert">{errors().form}</p>
      </Show>
      <div class="form-actions">
        <Button type="submit" variant="primary" loading={pending()}>
          Save settings
        </Button>
        <Button onClick={() => props.onDone(false)}>Cancel</Button>
      </div>
    </form>
  );
}

const GRACE_CHOICES = [
  { value: '0', label: 'Stop the old secret at once' },
  { value: '3600', label: 'Keep the old secret working for 1 hour' },
  { value: '86400', label: 'Keep the old secret working for 24 hours' },
] as const;

function RollKeyForm(props: { apiKey: ApiKey; onDone: (created: { name: string; key: string } | null) => void }) {
  const [grace, setGrace] = createSignal<(typeof GRACE_CHOICES)[number]['value']>('3600');
  const [error, setError] = createSignal<string | undefined>();
  const [pending, run] = createAction(
    async () => {
      const { apiKey, key } = await api.apiKey.roll.mutate({ apiKeyId: props.apiKey.id, graceSeconds: Number(grace()) });
      toast.success(`Key “${apiKey.name}” rolled: copy the new secret now.`);
      props.onDone({ name: apiKey.name, key });
    },
    { onError: (err) => setError(errorMessage(err)) },
  );
  return (
    <form
      class="key-settings"
      novalidate
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      <p>A new secret for “{props.apiKey.name}”: same key, settings and usage history. Deploy the new secret before the old one stops.</p>
      <SelectField label="Old secret" value={grace()} options={GRACE_CHOICES} onChange={setGrace} error={error()} />
      <div class="form-actions">
        <Button type="submit" variant="primary" loading={pending()}>
          Roll key
        </Button>
        <Button onClick={() => props.onDone(null)}>Cancel</Button>
      </div>
    </form>
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
