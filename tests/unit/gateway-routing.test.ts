/** The routing plan (server/modules/gateway/routing.ts): strategies, weighted key pools, skipped keys, sticky sessions. */
import { describe, expect, it } from 'vitest';
import { CallPlan, hash32, modelChain, orderedOptions, requestModels, sessionOf, withoutModels, type KeyChoice, type ModelRoutes, type RouteOption } from '../../server/modules/gateway/routing.js';
import type { ProviderHealth, ProviderScore } from '../../server/modules/gateway/health.js';
import { DEFAULT_ROUTING } from '../../server/modules/gateway/runtime.js';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import type { RouteProvider } from '../../shared/models.js';

function fakeHealth(scores: Record<string, Partial<ProviderScore>> = {}, unavailable: string[] = []): ProviderHealth {
  return {
    record() {},
    coolDown(ref) {
      unavailable.push(ref);
    },
    available: (_p, ref) => !unavailable.includes(ref),
    score: (p) => ({ successRate: null, p50LatencyMs: null, p50TtftMs: null, samples: 0, ...scores[p] }),
  };
}

function option(provider: RouteProvider, price: number, keys: { ref: string; weight?: number }[][]): RouteOption {
  const o = { provider, route: { kind: 'catalog', provider, model: 'm', entry: undefined }, tiers: [] as KeyChoice[][], price } as unknown as RouteOption & { tiers: KeyChoice[][] };
  o.tiers = keys.map((tier) => tier.map((k) => ({ option: o, ref: k.ref, keyName: k.ref, providerKeyId: k.ref, weight: k.weight ?? 1, paidBy: 'provider_key', cred: {} as never, target: null })));
  return o;
}
const routes = (model: string, options: RouteOption[]): ModelRoutes => ({ model, options, order: null });

async function drain(plan: CallPlan): Promise<string[]> {
  const out: string[] = [];
  for (let k = await plan.next(); k; k = await plan.next()) out.push(k.ref);
  return out;
}

describe('strategies', () => {
  const openai = option('openai', 750, [[{ ref: 'o' }]]);
  const azure = option('azure', 500, [[{ ref: 'a' }]]);
  const bedrock = option('bedrock', 900, [[{ ref: 'b' }]]);
  const health = fakeHealth({ openai: { p50TtftMs: 300, successRate: 0.99 }, azure: { p50TtftMs: 900, successRate: 0.6 }, bedrock: { p50TtftMs: 100, successRate: 1 } });
  const order = (strategy: 'price' | 'latency' | 'uptime' | 'balanced') => orderedOptions(routes('x', [openai, azure, bedrock]), strategy, health).map((o) => o.provider);

  it('orders by price, latency, uptime and a balance of the three', () => {
    expect(order('price')).toEqual(['azure', 'openai', 'bedrock']);
    expect(order('latency')).toEqual(['bedrock', 'openai', 'azure']);
    expect(order('uptime')).toEqual(['bedrock', 'openai', 'azure']);
    // balanced: openai 1.5 + 3 + 0.1 = 4.6; azure 1 + 9 + 4 = 14; bedrock 1.8 + 1 + 0 = 2.8
    expect(order('balanced')).toEqual(['bedrock', 'openai', 'azure']);
  });

  it('keeps catalog order on ties and without health data', () => {
    const a = option('openai', 750, [[{ ref: 'o' }]]);
    const b = option('azure', 750, [[{ ref: 'a' }]]);
    for (const s of ['price', 'latency', 'uptime', 'balanced'] as const) expect(orderedOptions(routes('x', [a, b]), s, fakeHealth()).map((o) => o.provider)).toEqual(['openai', 'azure']);
  });
});

describe('the plan of a call', () => {
  it('tries keys by weight, own keys before the operator, then the next option and the next model', async () => {
    const first = routes('m1', [option('openai', 1, [[{ ref: 'own1' }, { ref: 'own2' }], [{ ref: 'op' }]]), option('azure', 1, [[{ ref: 'az' }]])]);
    const second = routes('m2', [option('anthropic', 1, [[{ ref: 'an' }]])]);
    const plan = new CallPlan(fakeHealth(), 'balanced', first, ['m1', 'm2'], async () => second, null, () => 0.99);
    expect(await drain(plan)).toEqual(['own2', 'own1', 'op', 'az', 'an']);
  });

  it('spreads calls across a pool by weight', async () => {
    const first = routes('m', [option('openai', 1, [[{ ref: 'heavy', weight: 3 }, { ref: 'light', weight: 1 }, { ref: 'off', weight: 0 }]])]);
    const counts = { heavy: 0, light: 0, off: 0 } as Record<string, number> & { heavy: number; off: number };
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 4000; i++) {
      const k = await new CallPlan(fakeHealth(), 'balanced', first, ['m'], async () => first, null, random).next();
      counts[k!.ref]!++;
    }
    expect(counts.off).toBe(0);
    expect(counts.heavy / 4000).toBeGreaterThan(0.71);
    expect(counts.heavy / 4000).toBeLessThan(0.79);
  });

  it('passes over unavailable keys, and tries one anyway when nothing else is left', async () => {
    const first = routes('m', [option('openai', 1, [[{ ref: 'a' }, { ref: 'b' }]])]);
    expect(await drain(new CallPlan(fakeHealth({}, ['a']), 'balanced', first, ['m'], async () => first, null))).toEqual(['b']);
    expect(await drain(new CallPlan(fakeHealth({}, ['a', 'b']), 'balanced', first, ['m'], async () => first, null))).toEqual(['a']);
  });

  it('skips fallback models that cannot be routed, remembering why', async () => {
    const first = routes('m', [option('openai', 1, [[{ ref: 'a' }]])]);
    const plan = new CallPlan(fakeHealth(), 'balanced', first, ['m', 'nope', 'm3'], async (model) => {
      if (model === 'nope') throw new GatewayError(404, 'unknown', 'invalid_request_error', 'model_not_found');
      return routes(model, [option('azure', 1, [[{ ref: 'z' }]])]);
    }, null);
    expect(await drain(plan)).toEqual(['a', 'z']);
    expect((plan.routingError as GatewayError).code).toBe('model_not_found');
  });

  it('passes over the keys at the same endpoint after a provider failure', async () => {
    const first = routes('m', [option('openai', 1, [[{ ref: 'a' }, { ref: 'b' }]]), option('azure', 1, [[{ ref: 'z' }]])]);
    const plan = new CallPlan(fakeHealth(), 'balanced', first, ['m'], async () => first, null, () => 0);
    const k = await plan.next();
    expect(k!.ref).toBe('a');
    plan.passOver(k!, 'http://same');
    expect((await plan.next())!.ref).toBe('z');
  });

  it('keeps a session on one key (rendezvous hashing), the same for every plan, moving only when that key is unavailable', async () => {
    const keys = ['k1', 'k2', 'k3', 'k4'].map((ref) => ({ ref }));
    const first = routes('m', [option('openai', 1, [keys.slice(0, 2)]), option('azure', 1, [keys.slice(2)])]);
    const pick = async (session: string, down: string[] = []) => (await new CallPlan(fakeHealth({}, down), 'balanced', first, ['m'], async () => first, session).next())!.ref;
    const chosen = await pick('session-1');
    for (let i = 0; i < 20; i++) expect(await pick('session-1')).toBe(chosen);
    const spread = new Set<string>();
    for (let i = 0; i < 64; i++) spread.add(await pick(`s-${i}`));
    expect(spread.size).toBe(4);
    const moved = await pick('session-1', [chosen]);
    expect(moved).not.toBe(chosen);
    // Sessions on other keys stay where they were.
    for (let i = 0; i < 64; i++) {
      const before = await pick(`s-${i}`);
      if (before !== chosen) expect(await pick(`s-${i}`, [chosen])).toBe(before);
    }
  });

  it('hashes the same on every instance', () => {
    expect(hash32('session-1\u0000k1')).toBe(hash32('session-1\u0000k1'));
    expect(hash32('a')).not.toBe(hash32('b'));
  });
});

describe('request settings', () => {
  it('checks models: 1 to 5 non-empty names', () => {
    expect(requestModels({})).toBeNull();
    expect(requestModels({ models: ['a', 'b'] })).toEqual(['a', 'b']);
    for (const bad of [[], ['a', 'b', 'c', 'd', 'e', 'f'], [''], [3], 'a', ['x'.repeat(201)]]) expect(() => requestModels({ models: bad })).toThrow(/models/);
    expect(withoutModels({ model: 'a', models: ['b'] })).toEqual({ model: 'a' });
  });

  it('chains model, then models (else the project fallbacks), without repeats', () => {
    const routing = { ...DEFAULT_ROUTING, fallbacks: { a: ['b', 'c'] } };
    expect(modelChain('a', null, routing, true)).toEqual(['a', 'b', 'c']);
    expect(modelChain('a', ['a', 'x'], routing, true)).toEqual(['a', 'x']);
    expect(modelChain('a', null, routing, false)).toEqual(['a']);
  });

  it('takes the session from x-session-id, prompt_cache_key or metadata.user_id', () => {
    expect(sessionOf('h', { prompt_cache_key: 'p' })).toBe('h');
    expect(sessionOf(undefined, { prompt_cache_key: 'p' })).toBe('p');
    expect(sessionOf(undefined, { metadata: { user_id: 'u' } })).toBe('u');
    expect(sessionOf(undefined, {})).toBeNull();
  });
});
