import { describe, expect, it } from 'vitest';
import { costNanos, findModel, MODEL_CATALOG, pricesFor } from '../../shared/models.js';

const model = (provider: Parameters<typeof findModel>[0], id: string) => findModel(provider, id)!.nanosPerMTok;

describe('model prices', () => {
  it('bills fresh input, cache reads, cache writes and output each at their own price', () => {
    const sonnet = model('anthropic', 'claude-sonnet-4-5-20250929');
    // 1,000 prompt tokens: 600 read from the cache, 300 written to it, 100 fresh; 50 output.
    const cost = costNanos(sonnet, { inputTokens: 1000, cachedTokens: 600, cacheWriteTokens: 300, outputTokens: 50 });
    // 100 × $3 + 600 × $0.30 + 300 × $3.75 + 50 × $15 per million, in nano-dollars (×1000 per token-dollar).
    expect(cost).toBe(100n * 3000n + 600n * 300n + 300n * 3750n + 50n * 15000n);
    // Without cache writes the same prompt costs less: writes are not billed as plain input.
    expect(costNanos(sonnet, { inputTokens: 1000, cachedTokens: 600, outputTokens: 50 })).toBe(400n * 3000n + 600n * 300n + 50n * 15000n);
  });

  it('bills cache writes as input on models without a cache-write price', () => {
    const mini = model('openai', 'gpt-4o-mini');
    expect(mini.cacheWrite).toBe(mini.input);
    expect(costNanos(mini, { inputTokens: 100, cachedTokens: 0, cacheWriteTokens: 40, outputTokens: 0 })).toBe(costNanos(mini, { inputTokens: 100, cachedTokens: 0, outputTokens: 0 }));
  });

  it('never bills more cache reads and writes than there were prompt tokens', () => {
    const sonnet = model('anthropic', 'claude-sonnet-4-5-20250929');
    // Inconsistent counts from a provider: reads are capped at the prompt, writes at what is left.
    expect(costNanos(sonnet, { inputTokens: 10, cachedTokens: 8, cacheWriteTokens: 50, outputTokens: 0 })).toBe(8n * 300n + 2n * 3750n);
  });

  it('prices the whole request at a long-prompt tier once its input passes the threshold', () => {
    const pro = model('google', 'gemini-2.5-pro');
    expect(pricesFor(pro, 200_000).input).toBe(1_250_000_000n);
    expect(pricesFor(pro, 200_001).input).toBe(2_500_000_000n);
    // At the threshold: base prices ($1.25 in, $10 out).
    expect(costNanos(pro, { inputTokens: 200_000, cachedTokens: 0, outputTokens: 1000 })).toBe(200_000n * 1250n + 1000n * 10_000n);
    // One token over: every token at the tier's prices ($2.50 in, $0.25 cached, $15 out).
    expect(costNanos(pro, { inputTokens: 200_001, cachedTokens: 1, outputTokens: 1000 })).toBe(200_000n * 2500n + 1n * 250n + 1000n * 15_000n);
  });

  it('chooses the highest tier a request reaches when there are several', () => {
    const coder = model('alibaba', 'qwen3-coder-plus');
    expect(pricesFor(coder, 32_000).output).toBe(5_000_000_000n);
    expect(pricesFor(coder, 32_001).output).toBe(9_000_000_000n);
    expect(pricesFor(coder, 128_001).output).toBe(15_000_000_000n);
    expect(pricesFor(coder, 900_000).output).toBe(60_000_000_000n);
  });

  it('has tiers in ascending order with prices above the base for every tiered model', () => {
    for (const m of MODEL_CATALOG) {
      const tiers = m.nanosPerMTok.tiers ?? [];
      let last = { above: 0, input: m.nanosPerMTok.input, output: m.nanosPerMTok.output };
      for (const t of tiers) {
        expect(t.above, `${m.provider}/${m.id}`).toBeGreaterThan(last.above);
        expect(t.above, `${m.provider}/${m.id}`).toBeLessThan(m.contextTokens);
        expect(t.input, `${m.provider}/${m.id}`).toBeGreaterThan(last.input);
        expect(t.output, `${m.provider}/${m.id}`).toBeGreaterThanOrEqual(last.output);
        last = t;
      }
    }
  });
});
