/**
 * Provider keys (owners and admins): the organization's own upstream keys. Add, rotate, disable,
 * delete, and weigh: several keys for one provider form a pool whose calls are spread by weight.
 */
import { createSignal, For, onMount, Show, Switch, Match } from 'solid-js';
import { ALIBABA_REGIONS, BEDROCK_PROFILES, PROVIDER_KEY_KINDS, PROVIDER_KEY_LABELS, type ProviderKeyKind } from '../../../shared/models.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { createStore } from 'solid-js/store';
import { createReloadingList } from '../state/list.js';
import { useOrg } from '../state/org-context.js';
import { confirmAction, confirmWithInput } from '../ui/confirm.js';
import { Badge, Button, Card, createAction, EmptyState, Field, LoadState, PageHeader, SelectField, TextField } from '../ui/components.js';
import { formatDate } from '../ui/format.js';
import { toast } from '../ui/toast.js';

type ProviderKey = RouterOutputs['providerKey']['list'][number];

const KIND_OPTIONS = PROVIDER_KEY_KINDS.map((k) => ({ value: k, label: PROVIDER_KEY_LABELS[k] }));
const label = (k: string) => PROVIDER_KEY_LABELS[k as ProviderKeyKind] ?? k;
export const WEIGHT_EXPLANATION = 'Calls are spread across keys of one provider by weight: a key of weight 2 takes twice the calls of a key of weight 1. A disabled key takes none.';
const weightProblem = (text: string) => (/^\d{1,3}$/.test(text.trim()) && Number(text) >= 1 && Number(text) <= 100 ? null : 'Weight is a whole number from 1 to 100.');

/** A key's share of its provider's calls among the active keys for that provider, when it shares them; else null. */
function shareOf(key: ProviderKey, all: readonly ProviderKey[]): number | null {
  if (key.status !== 'active' || key.provider === 'custom') return null;
  const pool = all.filter((k) => k.provider === key.provider && k.status === 'active');
  if (pool.length < 2) return null;
  return key.weight / pool.reduce((sum, k) => sum + k.weight, 0);
}

export function ProviderKeysPage() {
  const ctx = useOrg();
  return (
    <Show
      when={ctx.can('providerKey.manage')}
      fallback={
        <div class="page">
          <PageHeader title="Provider keys" />
          <div class="role-note" role="note" data-testid="provider-keys-no-access">
            <p class="cell-title">You don't have access to provider keys</p>
            <p class="card-pad">Owners and admins of {ctx.org()?.name} manage the organization's own OpenAI, Anthropic and other provider keys. Ask one of them to add or rotate a key.</p>
          </div>
        </div>
      }
    >
      <ProviderKeysContent />
    </Show>
  );
}

function ProviderKeysContent() {
  const ctx = useOrg();
  const { state, load } = createReloadingList(() => api.providerKey.list.query({ orgId: ctx.orgId() }));
  const [adding, setAdding] = createSignal(false);
  onMount(() => void load());
  // Added, rotated, disabled or deleted by another owner or admin: show it at once.
  ctx.onEvent((e) => {
    if (e.type === 'providerKey.changed') void load();
  });

  return (
    <div class="page">
      <PageHeader
        title="Provider keys"
        description="With the organization's own key for a provider, hybrid and provider-key projects call it directly and are not charged credits. Keys are encrypted at rest; only the last 4 characters are ever shown."
        actions={
          <Button variant="primary" onClick={() => setAdding(true)} disabled={adding()}>
            Add provider key
          </Button>
        }
      />
      <Show when={adding()}>
        <AddProviderKeyForm
          orgId={ctx.orgId()}
          onDone={(added) => {
            setAdding(false);
            if (added) void load();
          }}
        />
      </Show>
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
        <Show when={state.items.length > 0} fallback={<EmptyState title="No provider keys yet"><p class="muted">Requests use credits until you add one.</p></EmptyState>}>
          <Card>
            <p class="muted small" style={{ margin: '0 0 10px' }} data-testid="weight-explanation">
              Several keys for one provider form a pool. {WEIGHT_EXPLANATION}
            </p>
            <div class="table-wrap">
              <table class="table table-stack" data-testid="provider-keys">
                <thead>
                  <tr>
                    <th scope="col">Provider</th>
                    <th scope="col">Name</th>
                    <th scope="col">Base URL</th>
                    <th scope="col">Key</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">Weight</th>
                    <th scope="col" class="hide-sm">Added</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={state.items}>{(k) => <ProviderKeyRow providerKey={k} share={shareOf(k, state.items)} onChanged={() => void load()} />}</For>
                </tbody>
              </table>
            </div>
          </Card>
        </Show>
      </LoadState>
    </div>
  );
}

function ProviderKeyRow(props: { providerKey: ProviderKey; share: number | null; onChanged: () => void }) {
  const k = () => props.providerKey;
  const title = () => `${label(k().provider)}${k().name ? ` ${k().name}` : ''}`;
  const [toggling, toggle] = createAction(async () => {
    const status = k().status === 'active' ? 'disabled' : 'active';
    await api.providerKey.update.mutate({ providerKeyId: k().id, status });
    toast.success(status === 'active' ? `${title()} enabled.` : `${title()} disabled; requests fall back to credits where the project allows.`);
    props.onChanged();
  });
  const rotate = async () => {
    const ok = await confirmWithInput({
      title: `Rotate ${title()}`,
      body: 'Paste the new key. It replaces the old one at once, on every instance.',
      confirmLabel: 'Rotate key',
      input: { label: 'New key', placeholder: 'sk-…' },
      action: async (value) => {
        if (!value.trim()) throw new Error('Paste the new key.');
        await api.providerKey.update.mutate({ providerKeyId: k().id, key: value.trim() });
      },
    });
    if (ok) {
      toast.success(`${title()} rotated.`);
      props.onChanged();
    }
  };
  const reweigh = async () => {
    const ok = await confirmWithInput({
      title: `Weight of ${title()}`,
      body: `${WEIGHT_EXPLANATION} From 1 to 100.`,
      confirmLabel: 'Save weight',
      input: { label: 'Weight', initial: String(k().weight) },
      action: async (value) => {
        const problem = weightProblem(value);
        if (problem) throw new Error(problem);
        await api.providerKey.update.mutate({ providerKeyId: k().id, weight: Number(value) });
      },
    });
    if (ok) {
      toast.success(`${title()} weight saved.`);
      props.onChanged();
    }
  };
  const [deleting, remove] = createAction(async () => {
    const ok = await confirmAction({
      title: `Delete ${title()}?`,
      body: 'Requests for this provider then use credits (hybrid projects) or fail (provider-key projects).',
      confirmLabel: 'Delete key',
      danger: true,
    });
    if (!ok) return;
    await api.providerKey.delete.mutate({ providerKeyId: k().id });
    toast.success(`${title()} deleted.`);
    props.onChanged();
  });
  return (
    <tr>
      <td class="cell-title">{label(k().provider)}</td>
      <td data-label="Name">{k().name ?? '—'}</td>
      <td data-label="Base URL" class="break-all">{k().baseUrl ?? <span class="muted">Default</span>}</td>
      <td data-label="Key">
        <code class="mono">…{k().last4}</code>
      </td>
      <td data-label="Status">
        <Badge tone={k().status === 'active' ? 'success' : 'warning'}>{k().status === 'active' ? 'Active' : 'Disabled'}</Badge>
      </td>
      <td data-label="Weight" class="num nowrap" data-testid="provider-key-weight">
        <span>
          {k().weight}
          <Show when={props.share !== null}>
            {' '}
            <span class="muted small">({Math.round(props.share! * 100)}% of {label(k().provider)} calls)</span>
          </Show>
        </span>
      </td>
      <td class="nowrap hide-sm">{formatDate(k().createdAt)}</td>
      <td class="row-actions">
        <Button size="sm" variant="ghost" onClick={() => void rotate()}>
          Rotate<span class="sr-only"> {title()}</span>
        </Button>
        <Show when={k().provider !== 'custom'}>
          <Button size="sm" variant="ghost" onClick={() => void reweigh()}>
            Weight<span class="sr-only"> of {title()}</span>
          </Button>
        </Show>
        <Button size="sm" variant="ghost" loading={toggling()} onClick={() => void toggle()}>
          {k().status === 'active' ? 'Disable' : 'Enable'}
          <span class="sr-only"> {title()}</span>
        </Button>
        <Button size="sm" variant="ghost" class="text-danger" loading={deleting()} onClick={() => void remove()}>
          Delete<span class="sr-only"> {title()}</span>
        </Button>
      </td>
    </tr>
  );
}

function AddProviderKeyForm(props: { orgId: string; onDone: (added: boolean) => void }) {
  const [kind, setKind] = createSignal<ProviderKeyKind>('openai');
  const [form, setForm] = createStore({ key: '', name: '', baseUrl: '', resource: '', deployment: '', apiVersion: '2024-10-21', region: 'intl', bedrockRegion: 'us-east-1', bedrockProfile: 'global', location: 'us-central1', weight: '1' });
  const [errors, setErrors] = createSignal<Record<string, string>>({});
  const options = (): Record<string, unknown> | undefined => {
    switch (kind()) {
      case 'azure':
        return { resource: form.resource, deployment: form.deployment, apiVersion: form.apiVersion };
      case 'alibaba':
        return { region: form.region };
      case 'bedrock':
        return { region: form.bedrockRegion, inferenceProfile: form.bedrockProfile };
      case 'vertex':
        return { location: form.location };
      default:
        return undefined;
    }
  };
  const [pending, run] = createAction(
    async () => {
      const errs: Record<string, string> = {};
      if (!form.key.trim()) errs.key = 'Key is required';
      if (kind() === 'custom' && !form.name.trim()) errs.name = 'A custom provider needs a name (used as <name>/<model>)';
      if (kind() === 'custom' && !form.baseUrl.trim()) errs.baseUrl = 'Base URL is required for a custom provider';
      const weightError = kind() === 'custom' ? null : weightProblem(form.weight);
      if (weightError) errs.weight = weightError;
      setErrors(errs);
      if (Object.keys(errs).length) return;
      await api.providerKey.create.mutate({
        orgId: props.orgId,
        provider: kind(),
        key: form.key.trim(),
        ...(form.name.trim() ? { name: form.name.trim() } : {}),
        ...(kind() === 'custom' && form.baseUrl.trim() ? { baseUrl: form.baseUrl.trim() } : {}),
        ...(options() ? { options: options() } : {}),
        ...(kind() !== 'custom' && Number(form.weight) !== 1 ? { weight: Number(form.weight) } : {}),
      });
      toast.success(`${label(kind())} key added.`);
      props.onDone(true);
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        if (Object.keys(fields).length) setErrors({ ...fields, ...(fields.options ? {} : {}) });
        if (!fields.key && !fields.name && !fields.baseUrl && !fields.weight) toast.error(errorMessage(err));
      },
    },
  );
  return (
    <Card title="Add a provider key">
      <form
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <div class="form-row">
          <SelectField label="Provider" value={kind()} options={KIND_OPTIONS} onChange={(v) => { setKind(v); setErrors({}); }} />
          <TextField
            label={kind() === 'custom' ? 'Name' : 'Name (optional)'}
            value={form.name}
            onInput={(v) => setForm('name', v)}
            error={errors().name}
            hint={kind() === 'custom' ? 'Models are addressed as <name>/<model>.' : undefined}
            placeholder={kind() === 'custom' ? 'e.g. my-llm' : 'e.g. production'}
          />
          <Show when={kind() !== 'custom'}>
            <TextField label="Weight" type="number" min="1" max="100" step="1" inputmode="numeric" value={form.weight} onInput={(v) => setForm('weight', v)} error={errors().weight} hint="Calls are spread across keys of one provider by weight (1–100)." />
          </Show>
        </div>
        <Show
          when={kind() === 'vertex'}
          fallback={
            <TextField
              label="API key"
              type="password"
              autocomplete="off"
              value={form.key}
              onInput={(v) => setForm('key', v)}
              error={errors().key}
              hint={kind() === 'bedrock' ? 'A Bedrock API key, or an IAM access key as ACCESS_KEY_ID:SECRET_ACCESS_KEY (Claude models only).' : undefined}
            />
          }
        >
          <Field label="Service account JSON" error={errors().key}>
            {(id, describedBy) => (
              <textarea id={id} class="input input-mono" rows={5} value={form.key} aria-describedby={describedBy} onInput={(e) => setForm('key', e.currentTarget.value)} />
            )}
          </Field>
        </Show>
        <Switch>
          <Match when={kind() === 'custom'}>
            <TextField label="Base URL" value={form.baseUrl} onInput={(v) => setForm('baseUrl', v)} error={errors().baseUrl} placeholder="https://llm.example.com/v1" hint="An OpenAI-compatible API." />
          </Match>
          <Match when={kind() === 'azure'}>
            <div class="form-row">
              <TextField label="Resource" value={form.resource} onInput={(v) => setForm('resource', v)} hint="The name in https://<resource>.openai.azure.com" />
              <TextField label="Deployment" value={form.deployment} onInput={(v) => setForm('deployment', v)} />
            </div>
            <TextField label="API version" value={form.apiVersion} onInput={(v) => setForm('apiVersion', v)} error={errors().options} />
          </Match>
          <Match when={kind() === 'alibaba'}>
            <SelectField label="Region" value={form.region} options={Object.keys(ALIBABA_REGIONS).map((r) => ({ value: r, label: r }))} onChange={(v) => setForm('region', v)} error={errors().options} />
          </Match>
          <Match when={kind() === 'bedrock'}>
            <TextField label="Region" value={form.bedrockRegion} onInput={(v) => setForm('bedrockRegion', v)} error={errors().options} placeholder="us-east-1" />
            <SelectField
              label="Inference profile (Claude models)"
              value={form.bedrockProfile}
              options={[...BEDROCK_PROFILES.map((p) => ({ value: p, label: p === 'global' ? 'global (any region, list prices)' : p })), { value: 'none', label: 'none (the bare model id, in this region)' }]}
              onChange={(v) => setForm('bedrockProfile', v)}
            />
          </Match>
          <Match when={kind() === 'vertex'}>
            <TextField label="Location" value={form.location} onInput={(v) => setForm('location', v)} error={errors().options} placeholder="us-central1" />
          </Match>
        </Switch>
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={pending()}>
            Add key
          </Button>
          <Button onClick={() => props.onDone(false)}>Cancel</Button>
        </div>
      </form>
    </Card>
  );
}
