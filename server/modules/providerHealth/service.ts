/**
 * The Providers page's figures (providerHealth.get): per provider and per key of an organization's
 * own traffic, calls, success rate and p50/p95 latency and time to first token over the last 5 and
 * 60 minutes, from provider_health (every instance's attempts, written every few seconds) plus
 * this instance's attempts not yet written; circuit and cool-down states as this instance's
 * breaker sees them (server/modules/gateway/health.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { PROVIDER_LABELS, type RouteProvider } from '../../../shared/models.js';
import type { CircuitState, SharedProviderHealth } from '../gateway/health.js';
import { addCounts, emptyHealthCounts, HEALTH_SELECT_COLUMNS, healthRowOf, summarize, type HealthCounts, type HealthRow } from '../gateway/health-counts.js';
import { ProviderKey } from '../providerKeys/entities.js';

const MINUTE = 60_000;
const WINDOW_MINUTES = 60;
const SHORT_MINUTES = 5;

type Figures = ReturnType<typeof summarize>;
export interface KeyHealth {
  credential: string;
  /** The provider key's name, or "Gateway key N" for the operator's keys (calls paid with credits). */
  name: string;
  kind: 'organization' | 'operator';
  circuit: CircuitState;
  cooledDownUntil: Date | null;
  last5: Figures;
  last60: Figures;
}
export interface ProviderHealthView {
  provider: string;
  label: string;
  circuit: CircuitState;
  last5: Figures;
  last60: Figures;
  /** Attempts and failures per minute, oldest first, the last 60 minutes (the current one last). */
  minutes: { t: Date; calls: number; failures: number }[];
  keys: KeyHealth[];
}

interface Sums {
  last5: HealthCounts;
  last60: HealthCounts;
  cooledUntil: number | null;
}
const sums = (): Sums => ({ last5: emptyHealthCounts(), last60: emptyHealthCounts(), cooledUntil: null });

function add(into: Sums, row: HealthRow, shortSince: number) {
  addCounts(into.last60, row);
  if (row.minute >= shortSince) addCounts(into.last5, row);
  if (row.cooledUntil !== null && (into.cooledUntil === null || row.cooledUntil > into.cooledUntil)) into.cooledUntil = row.cooledUntil;
}

export async function providerHealthView(em: EntityManager, health: SharedProviderHealth | null, orgId: string): Promise<{ generatedAt: Date; providers: ProviderHealthView[] }> {
  const now = Date.now();
  const current = Math.floor(now / MINUTE) * MINUTE;
  const since = current - (WINDOW_MINUTES - 1) * MINUTE;
  const shortSince = current - (SHORT_MINUTES - 1) * MINUTE;
  const stored = await em.getConnection().execute<Parameters<typeof healthRowOf>[0][]>(`select ${HEALTH_SELECT_COLUMNS} from provider_health where org_id = ? and minute >= ?`, [orgId, new Date(since)]);
  const rows = [...stored.map(healthRowOf), ...(health?.unwritten(orgId) ?? []).filter((r) => r.minute >= since)];
  const keyNames = new Map((await em.find(ProviderKey, { orgId }, { fields: ['id', 'name'] })).map((k) => [k.id, k.name]));

  const providers = new Map<string, { sums: Sums; keys: Map<string, Sums>; perMinute: Map<number, { calls: number; failures: number }> }>();
  for (const row of rows) {
    let p = providers.get(row.provider);
    if (!p) providers.set(row.provider, (p = { sums: sums(), keys: new Map(), perMinute: new Map() }));
    add(p.sums, row, shortSince);
    let k = p.keys.get(row.credential);
    if (!k) p.keys.set(row.credential, (k = sums()));
    add(k, row, shortSince);
    const m = p.perMinute.get(row.minute) ?? { calls: 0, failures: 0 };
    m.calls += row.calls;
    m.failures += row.failures;
    p.perMinute.set(row.minute, m);
  }

  const view: ProviderHealthView[] = [];
  for (const [provider, p] of providers) {
    if (p.sums.last60.calls === 0 && [...p.keys.values()].every((k) => k.cooledUntil === null || k.cooledUntil <= now)) continue;
    const keys: KeyHealth[] = [...p.keys].map(([credential, k]) => {
      const operator = /^operator:[^:]+:(\d+)$/.exec(credential);
      const localCool = health?.cooledUntil(credential) ?? null;
      const cooled = Math.max(localCool ?? 0, k.cooledUntil ?? 0);
      return {
        credential,
        name: operator ? `Gateway key ${Number(operator[1]) + 1}` : (keyNames.get(credential) ?? 'deleted key'),
        kind: operator ? ('operator' as const) : ('organization' as const),
        circuit: health?.circuitState(provider, credential) ?? 'closed',
        cooledDownUntil: cooled > now ? new Date(cooled) : null,
        last5: summarize(k.last5),
        last60: summarize(k.last60),
      };
    });
    keys.sort((a, b) => b.last60.calls - a.last60.calls || a.name.localeCompare(b.name));
    view.push({
      provider,
      label: PROVIDER_LABELS[provider as RouteProvider] ?? provider,
      circuit: health?.circuitState(provider) ?? 'closed',
      last5: summarize(p.sums.last5),
      last60: summarize(p.sums.last60),
      minutes: Array.from({ length: WINDOW_MINUTES }, (_, i) => {
        const t = since + i * MINUTE;
        const m = p.perMinute.get(t);
        return { t: new Date(t), calls: m?.calls ?? 0, failures: m?.failures ?? 0 };
      }),
      keys,
    });
  }
  view.sort((a, b) => b.last60.calls - a.last60.calls || a.label.localeCompare(b.label));
  return { generatedAt: new Date(now), providers: view };
}
