/**
 * A project's routing settings (project.update {routing}): strategy, attempts at most, and a
 * fallback chain per model. Owners and admins edit; developers see the settings, disabled, with why.
 */
import { createEffect, createSignal, For, Show, on } from 'solid-js';
import { createStore, produce } from 'solid-js/store';
import { MODEL_CATALOG } from '../../../shared/models.js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { projectRoutingInput, ROUTING_LIMITS, ROUTING_STRATEGIES } from '../../../shared/schemas.js';
import { api, errorMessage, type RouterOutputs } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { Button, Card, createAction, Field, SelectField } from '../ui/components.js';
import './routing.css';
import { validate } from '../ui/forms.js';
import { toast } from '../ui/toast.js';

type Project = RouterOutputs['project']['list'][number];
type Strategy = (typeof ROUTING_STRATEGIES)[number];

const STRATEGY_LABELS: Record<Strategy, string> = {
  balanced: 'Balanced (price, latency and uptime)',
  price: 'Price (cheapest provider first)',
  latency: 'Latency (fastest time to first token)',
  uptime: 'Uptime (healthiest provider first)',
};
const DEFAULTS = { strategy: 'balanced' as Strategy, maxAttempts: 3 };
const MODEL_OPTIONS = MODEL_CATALOG.filter((m) => !/embed/i.test(m.id)).map((m) => `${m.provider}/${m.id}`);

interface Chain {
  model: string;
  fallbacks: string;
}

export function ProjectRoutingCard(props: { projects: readonly Project[]; onSaved: () => void }) {
  const ctx = useOrg();
  const canManage = () => ctx.can('project.manage');
  const [projectId, setProjectId] = createSignal<string>(props.projects[0]?.id ?? '');
  const project = () => props.projects.find((p) => p.id === projectId()) ?? props.projects[0];
  const [form, setForm] = createStore({ strategy: DEFAULTS.strategy, maxAttempts: String(DEFAULTS.maxAttempts), chains: [] as Chain[] });
  const [error, setError] = createSignal<string | null>(null);

  const reset = () => {
    const p = project();
    const r = (p?.routing ?? {}) as { strategy?: Strategy; maxAttempts?: number; fallbacks?: Record<string, string[]> };
    setForm({
      strategy: r.strategy ?? DEFAULTS.strategy,
      maxAttempts: String(r.maxAttempts ?? DEFAULTS.maxAttempts),
      chains: Object.entries(r.fallbacks ?? {}).map(([model, list]) => ({ model, fallbacks: list.join(', ') })),
    });
    setError(null);
  };
  // A project picked, or its routing changed (saved here or by someone else, live): show what is stored.
  createEffect(on(() => [projectId(), JSON.stringify(project()?.routing ?? {})], reset));

  const [saving, save] = createAction(
    async () => {
      const p = project();
      if (!p) return;
      const fallbacks: Record<string, string[]> = {};
      for (const c of form.chains) {
        const model = c.model.trim();
        const list = c.fallbacks.split(/[\s,]+/).filter(Boolean);
        if (!model && list.length === 0) continue;
        if (!model) return setError('Name the model each fallback chain is for.');
        if (fallbacks[model]) return setError(`“${model}” has two fallback chains; keep one.`);
        fallbacks[model] = list;
      }
      const attempts = Number(form.maxAttempts);
      const checked = validate(projectRoutingInput, { strategy: form.strategy, maxAttempts: form.maxAttempts.trim() === '' ? NaN : attempts, fallbacks });
      if (!checked.ok) return setError(Object.values(checked.errors)[0] ?? 'Check the values.');
      await api.project.update.mutate({ projectId: p.id, routing: checked.data });
      setError(null);
      toast.success(`Routing of “${p.name}” saved.`);
      props.onSaved();
    },
    { onError: (err) => setError(errorMessage(err)) },
  );

  const disabled = () => !canManage() || saving();
  const reason = () => `Your role (${ROLE_LABELS[ctx.role() ?? 'developer']}) can view routing; owners and admins change it.`;

  return (
    <Card
      title="Routing"
      description="How this project's calls pick a provider and fall back when one fails. A request's own models list and the x-gateway-no-fallback header win over these settings."
      id="routing"
    >
      <form
        class="routing-form"
        data-testid="routing-form"
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Show when={!canManage()}>
          <p class="role-note" data-testid="routing-disabled-reason">
            {reason()}
          </p>
        </Show>
        <div class="routing-grid">
          <Show when={props.projects.length > 1}>
            <SelectField label="Project" value={projectId()} options={props.projects.map((p) => ({ value: p.id, label: p.name }))} onChange={setProjectId} />
          </Show>
          <SelectField
            label="Strategy"
            value={form.strategy}
            options={ROUTING_STRATEGIES.map((s) => ({ value: s, label: STRATEGY_LABELS[s] }))}
            onChange={(v) => setForm('strategy', v)}
            disabled={disabled()}
            hint="For a model several providers serve, which one goes first."
          />
          <Field label="Attempts at most" hint={`1 to ${ROUTING_LIMITS.maxAttempts}, the first included: retries go to another key, provider or model.`}>
            {(id, describedBy) => (
              <input
                id={id}
                class="input input-num"
                type="number"
                min="1"
                max={String(ROUTING_LIMITS.maxAttempts)}
                name="maxAttempts"
                value={form.maxAttempts}
                disabled={disabled()}
                aria-describedby={describedBy}
                onInput={(e) => setForm('maxAttempts', e.currentTarget.value)}
              />
            )}
          </Field>
        </div>
        <fieldset class="fieldset routing-chains" disabled={disabled()}>
          <legend>Fallback chains</legend>
          <p class="muted small">
            When a call to the model fails (connection error, timeout before the first byte, 5xx, 429), the next model in its chain is tried. Up to {ROUTING_LIMITS.fallbackModels} models, each with up to {ROUTING_LIMITS.chainLength} fallbacks,
            written provider/model.
          </p>
          <Show when={form.chains.length > 0} fallback={<p class="muted small" data-testid="no-chains">No fallback chains: calls fall back only across providers and keys of the same model.</p>}>
            <div class="chain-list">
              <For each={form.chains}>
                {(chain, i) => (
                  <div class="chain-row" data-testid="chain-row">
                    <label class="chain-model">
                      <span class="sr-only">Model</span>
                      <input class="input input-sm" list="routing-models" placeholder="openai/gpt-4o" value={chain.model} onInput={(e) => setForm('chains', i(), 'model', e.currentTarget.value)} aria-label={`Model of chain ${i() + 1}`} />
                    </label>
                    <span class="chain-arrow" aria-hidden="true">
                      →
                    </span>
                    <label class="chain-fallbacks">
                      <span class="sr-only">Fallbacks</span>
                      <input
                        class="input input-sm"
                        placeholder="anthropic/claude-sonnet-4-5, openai/gpt-4o-mini"
                        value={chain.fallbacks}
                        onInput={(e) => setForm('chains', i(), 'fallbacks', e.currentTarget.value)}
                        aria-label={`Fallbacks of chain ${i() + 1}, separated by commas`}
                      />
                    </label>
                    <Button size="sm" variant="ghost" class="text-danger" onClick={() => setForm('chains', produce((c) => void c.splice(i(), 1)))} disabled={disabled()}>
                      Remove<span class="sr-only"> chain {i() + 1}</span>
                    </Button>
                  </div>
                )}
              </For>
            </div>
          </Show>
          <datalist id="routing-models">
            <For each={MODEL_OPTIONS}>{(m) => <option value={m} />}</For>
          </datalist>
          <Button size="sm" onClick={() => setForm('chains', (c) => [...c, { model: '', fallbacks: '' }])} disabled={disabled() || form.chains.length >= ROUTING_LIMITS.fallbackModels}>
            Add fallback chain
          </Button>
        </fieldset>
        <Show when={error()}>
          <p class="form-error" role="alert" data-testid="routing-error">
            {error()}
          </p>
        </Show>
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={saving()} disabled={!canManage()} title={canManage() ? undefined : reason()}>
            Save routing
          </Button>
          <Button onClick={reset} disabled={disabled()}>
            Discard changes
          </Button>
        </div>
      </form>
    </Card>
  );
}
