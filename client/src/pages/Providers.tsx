/**
 * Providers: how each upstream provider and each key answered this organization's calls over the
 * last 5 and 60 minutes (calls, success rate, p50/p95 latency and time to first token), with the
 * circuit breaker's state. Live: refetched (at most every 2 s) on the organization's usage events,
 * and every 15 s anyway (circuits change state with time, and other instances' figures arrive).
 */
import { A } from '@solidjs/router';
import { createSignal, For, onCleanup, onMount, Show } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { api, type RouterOutputs } from '../api.js';
import { useOrg } from '../state/org-context.js';
import { Badge, Card, LoadState, PageHeader } from '../ui/components.js';
import { formatCount, formatMs, formatPercent } from '../ui/usage-format.js';
import './providers.css';

type Health = RouterOutputs['providerHealth']['get'];
type ProviderRow = Health['providers'][number];
type KeyRow = ProviderRow['keys'][number];
type Figures = ProviderRow['last5'];
type WindowId = 'last5' | 'last60';

const LIVE_THROTTLE_MS = 2000;
const POLL_MS = 15_000;

export function ProvidersPage() {
  const ctx = useOrg();
  const [state, setState] = createStore({ providers: [] as ProviderRow[], generatedAt: null as Date | null, loaded: false, error: null as unknown });
  const [window, setWindow] = createSignal<WindowId>('last5');
  let generation = 0;

  const load = async () => {
    const gen = ++generation;
    try {
      const health = await api.providerHealth.get.query({ orgId: ctx.orgId() });
      if (gen !== generation) return;
      setState('providers', reconcile(health.providers, { key: 'provider' }));
      setState({ generatedAt: health.generatedAt, loaded: true, error: null });
    } catch (err) {
      if (gen === generation) setState('error', err);
    }
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  const refreshSoon = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      void load();
    }, Math.max(0, last + LIVE_THROTTLE_MS - Date.now()));
  };
  ctx.onEvent((e) => {
    if (e.type === 'usage') refreshSoon();
  });
  onMount(() => {
    void load();
    const poll = setInterval(refreshSoon, POLL_MS);
    onCleanup(() => clearInterval(poll));
  });
  onCleanup(() => clearTimeout(timer));

  return (
    <div class="page">
      <PageHeader
        title="Providers"
        description="How the upstream providers and your keys answered this organization's calls, live. Providers that keep failing are skipped for a while and probed back."
        actions={
          <Show when={state.providers.length > 0}>
            <div class="segmented" role="group" aria-label="Window">
              <button type="button" classList={{ active: window() === 'last5' }} aria-pressed={window() === 'last5'} onClick={() => setWindow('last5')}>
                Last 5 min
              </button>
              <button type="button" classList={{ active: window() === 'last60' }} aria-pressed={window() === 'last60'} onClick={() => setWindow('last60')}>
                Last 60 min
              </button>
            </div>
          </Show>
        }
      />
      <LoadState loaded={state.loaded} error={state.error} retry={() => void load()}>
        <Show when={state.providers.length > 0} fallback={<NoProviderTraffic />}>
          <div class="provider-list" data-testid="providers">
            <For each={state.providers}>{(p) => <ProviderCard provider={p} window={window()} />}</For>
          </div>
          <p class="muted small provider-footnote">
            Figures count upstream attempts (a call that fell back to another provider counts once for each), from every gateway instance, updated every few seconds. Percentiles are
            accurate to their histogram bucket.
          </p>
        </Show>
      </LoadState>
    </div>
  );
}

function NoProviderTraffic() {
  const ctx = useOrg();
  return (
    <div class="empty-state empty-state-card" data-testid="no-provider-traffic">
      <p class="empty-title">No provider calls in the last hour</p>
      <p>Each provider appears here with its success rate, latency and time to first token as soon as calls go through the gateway.</p>
      <p>
        <A href={`/org/${ctx.orgId()}/keys`}>Create an API key</A>
        <Show when={ctx.can('providerKey.manage')}>
          {' '}
          or <A href={`/org/${ctx.orgId()}/provider-keys`}>add your own provider keys</A>
        </Show>
        .
      </p>
    </div>
  );
}

const CIRCUIT: Record<ProviderRow['circuit'], { tone: 'success' | 'warning' | 'danger'; label: string; hint: string }> = {
  closed: { tone: 'success', label: 'Healthy', hint: 'Circuit closed: calls go through.' },
  'half-open': { tone: 'warning', label: 'Probing', hint: 'Circuit half-open: one probe call is let through; its success closes the circuit.' },
  open: { tone: 'danger', label: 'Skipped', hint: 'Circuit open: too many failures in the last minute, calls go to other providers or keys.' },
};

function CircuitBadge(props: { state: ProviderRow['circuit'] }) {
  return (
    <span title={CIRCUIT[props.state].hint} data-testid="circuit" data-state={props.state}>
      <Badge tone={CIRCUIT[props.state].tone}>{CIRCUIT[props.state].label}</Badge>
    </span>
  );
}

function rateTone(rate: number | null): string {
  if (rate === null) return '';
  return rate >= 0.99 ? 'good' : rate >= 0.9 ? 'fair' : 'bad';
}

function ProviderCard(props: { provider: ProviderRow; window: WindowId }) {
  const f = () => props.provider[props.window];
  return (
    <Card class="provider-card" id={`provider-${props.provider.provider}`}>
      <div class="provider-head" data-testid={`provider-${props.provider.provider}`}>
        <div class="provider-name">
          <h2 class="card-title">{props.provider.label}</h2>
          <CircuitBadge state={props.provider.circuit} />
        </div>
        <figure class="provider-spark">
          <Sparkline minutes={props.provider.minutes} />
          <figcaption class="muted small">Attempts per minute, last hour{props.provider.minutes.some((m) => m.failures > 0) ? ' · failures in red' : ''}</figcaption>
        </figure>
      </div>
      <dl class="provider-stats">
        <Stat label="Calls" value={formatCount(f().calls)} testId="calls" />
        <Stat label="Success" value={formatPercent(f().successRate)} tone={rateTone(f().successRate)} testId="success" />
        <Stat label="Latency p50 / p95" value={pair(f().latencyP50Ms, f().latencyP95Ms)} testId="latency" />
        <Stat label="First token p50 / p95" value={pair(f().ttftP50Ms, f().ttftP95Ms)} testId="ttft" />
      </dl>
      <Show when={props.provider.keys.length > 0}>
        <KeyTable keys={props.provider.keys} window={props.window} />
      </Show>
    </Card>
  );
}

function pair(a: number | null, b: number | null): string {
  if (a === null && b === null) return '—';
  return `${formatMs(a)} / ${formatMs(b)}`;
}

function Stat(props: { label: string; value: string; tone?: string; testId: string }) {
  return (
    <div class="provider-stat">
      <dt>{props.label}</dt>
      <dd class={props.tone ? `rate-${props.tone}` : undefined} data-testid={props.testId}>
        {props.value}
      </dd>
    </div>
  );
}

function KeyTable(props: { keys: readonly KeyRow[]; window: WindowId }) {
  return (
    <div class="table-wrap provider-keys">
      <table class="table table-compact table-stack">
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">State</th>
            <th scope="col" class="num">Calls</th>
            <th scope="col" class="num">Success</th>
            <th scope="col" class="num">Latency p50 / p95</th>
            <th scope="col" class="num">First token p50 / p95</th>
          </tr>
        </thead>
        <tbody>
          <For each={props.keys}>
            {(k) => {
              const f = (): Figures => k[props.window];
              return (
                <tr data-testid="provider-key">
                  <td class="cell-title">
                    <span>
                      <span class="key-name">{k.name}</span>
                      <Show when={k.kind === 'operator'}>
                        <span class="muted small"> · paid with credits</span>
                      </Show>
                    </span>
                  </td>
                  <td data-label="State">
                    <Show when={k.cooledDownUntil} fallback={<CircuitBadge state={k.circuit} />}>
                      {(until) => (
                        <span title={`Cooled down after a 401, 403 or 429 until ${new Date(until()).toLocaleTimeString()}`} data-testid="cooled">
                          <Badge tone="warning">Cooling down</Badge>
                        </span>
                      )}
                    </Show>
                  </td>
                  <td class="num" data-label="Calls">{formatCount(f().calls)}</td>
                  <td class="num" data-label="Success">
                    <span class={`rate-${rateTone(f().successRate)}`}>{formatPercent(f().successRate)}</span>
                  </td>
                  <td class="num" data-label="Latency p50 / p95">{pair(f().latencyP50Ms, f().latencyP95Ms)}</td>
                  <td class="num" data-label="First token p50 / p95">{pair(f().ttftP50Ms, f().ttftP95Ms)}</td>
                </tr>
              );
            }}
          </For>
        </tbody>
      </table>
    </div>
  );
}

/** Attempts per minute over the hour (failures stacked in red), newest on the right. */
function Sparkline(props: { minutes: ProviderRow['minutes'] }) {
  const W = 180;
  const H = 32;
  const max = () => Math.max(1, ...props.minutes.map((m) => m.calls));
  const bar = W / 60;
  const total = () => props.minutes.reduce((n, m) => n + m.calls, 0);
  return (
    <svg class="sparkline" viewBox={`0 0 ${W} ${H}`} width={W} height={H} preserveAspectRatio="none" role="img" aria-label={`${total()} attempts in the last 60 minutes, per minute`}>
      <rect class="spark-track" x="0" y={H - 1} width={W} height="1" />
      <For each={props.minutes}>
        {(m, i) => {
          const h = () => (m.calls / max()) * (H - 2);
          const fh = () => (m.failures / max()) * (H - 2);
          return (
            <g>
              <rect class="spark-ok" x={i() * bar + 0.5} y={H - h()} width={Math.max(1, bar - 1)} height={h()} />
              <rect class="spark-fail" x={i() * bar + 0.5} y={H - fh()} width={Math.max(1, bar - 1)} height={fh()} />
            </g>
          );
        }}
      </For>
    </svg>
  );
}
