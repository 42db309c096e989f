/** Small gateway helpers: token counts from providers, OpenAI usage objects, upstream error mapping. */
import { describe, expect, it } from 'vitest';
import { openAiUsage, toCount } from '../../server/modules/gateway/upstream/types.js';
import { fromUpstreamStatus } from '../../server/modules/gateway/errors.js';

describe('token counts from providers', () => {
  it('keeps whole non-negative finite numbers, floors fractions, caps at 2e9, refuses the rest', () => {
    expect(toCount(0)).toBe(0);
    expect(toCount(42)).toBe(42);
    expect(toCount(42.9)).toBe(42);
    expect(toCount(5e12)).toBe(2_000_000_000);
    for (const v of [-1, NaN, Infinity, '12', null, undefined, {}]) expect(toCount(v), String(v)).toBeNull();
  });

  it('reads OpenAI usage, including cached and cache-written prompt tokens', () => {
    expect(openAiUsage({ prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 } })).toEqual({
      inputTokens: 120,
      outputTokens: 30,
      cachedTokens: 100,
    });
    expect(openAiUsage({ prompt_tokens: 120, completion_tokens: 30, prompt_tokens_details: { cached_tokens: 10, cache_write_tokens: 50 } })).toEqual({
      inputTokens: 120,
      outputTokens: 30,
      cachedTokens: 10,
      cacheWriteTokens: 50,
    });
    expect(openAiUsage({ completion_tokens: 3, prompt_tokens_details: null })).toEqual({ inputTokens: 0, outputTokens: 3, cachedTokens: 0 });
  });

  it('reports no usage when a provider sends none (rather than zero tokens)', () => {
    expect(openAiUsage(null)).toBeNull();
    expect(openAiUsage('usage')).toBeNull();
    expect(openAiUsage({ total_tokens: 10 })).toBeNull();
  });
});

describe('upstream error answers', () => {
  it('blames the client for 400-class request errors and passes on the provider’s message', () => {
    const err = fromUpstreamStatus('openai', 422, JSON.stringify({ error: { message: 'messages: too long', type: 'invalid_request_error' } }));
    expect({ status: err.status, type: err.type, code: err.code, message: err.message }).toEqual({
      status: 400,
      type: 'invalid_request_error',
      code: 'upstream_bad_request',
      message: 'openai rejected the request: messages: too long',
    });
  });

  it('maps rejected credentials to 502, rate limits to 429, the rest to 502', () => {
    expect(fromUpstreamStatus('anthropic', 401, '{"error":"bad key"}')).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    expect(fromUpstreamStatus('anthropic', 403, 'forbidden')).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    expect(fromUpstreamStatus('anthropic', 429, '{"message":"slow down"}')).toMatchObject({ status: 429, code: 'upstream_rate_limited', message: 'anthropic is rate limiting: slow down' });
    expect(fromUpstreamStatus('google', 503, '<html>busy</html>')).toMatchObject({ status: 502, code: 'upstream_error', message: 'google failed (HTTP 503): <html>busy</html>' });
  });

  it('keeps at most 300 characters of a body that is not JSON', () => {
    expect(fromUpstreamStatus('x', 500, 'a'.repeat(1000)).message).toBe(`x failed (HTTP 500): ${'a'.repeat(300)}`);
  });
});
