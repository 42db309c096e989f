/** What PostgreSQL refuses (NUL, lone UTF-16 surrogates) is replaced with U+FFFD; everything else is kept as is. */
import { describe, expect, it } from 'vitest';
import { storableJson, storableRecord, storableText, type UsageRecord } from '../../server/modules/usage/meter.js';
import { answerChars } from '../../server/modules/gateway/completions.js';

describe('storable text', () => {
  it('replaces NUL and lone surrogates, keeps pairs', () => {
    expect(storableText('a\u0000b')).toBe('a\ufffdb');
    expect(storableText('x\ud800y\udc00z')).toBe('x\ufffdy\ufffdz');
    expect(storableText('emoji \ud83d\ude00 ok')).toBe('emoji \ud83d\ude00 ok');
    expect(storableText('cut \ud83d')).toBe('cut \ufffd');
  });

  it('repairs JSON text the same way, and leaves a literal backslash-u alone', () => {
    const value = { a: 'x\ud800', b: 'n\u0000', c: '\ud83d\ude00', d: '\\ud800 and \\u0000 are text', e: '\\\ud800' };
    const repaired = JSON.parse(storableJson(JSON.stringify(value))) as typeof value;
    expect(repaired).toEqual({ a: 'x\ufffd', b: 'n\ufffd', c: '\ud83d\ude00', d: '\\ud800 and \\u0000 are text', e: '\\\ufffd' });
  });

  it('a record: text repaired after cutting to its column, counts whole and in range', () => {
    const r = storableRecord({
      orgId: 'o', projectId: 'p', apiKeyId: 'k', endpoint: 'chat.completions', provider: 'openai', model: `${'m'.repeat(199)}\ud83d\ude00`, inputTokens: 1.5, outputTokens: Number.NaN, cachedTokens: 3e12, cacheWriteTokens: -1,
      costNanos: 5n, paidBy: 'credits', latencyMs: Infinity, ttftMs: null, status: 200, error: 'bad \u0000', cached: false, streamed: false, canceled: false,
      requestBody: null, responseBody: null, createdAt: new Date(),
    } satisfies UsageRecord);
    expect(r.model).toBe(`${'m'.repeat(199)}\ufffd`);
    expect(r.error).toBe('bad \ufffd');
    expect([r.inputTokens, r.outputTokens, r.cachedTokens, r.cacheWriteTokens, r.latencyMs]).toEqual([2, 0, 2_147_483_647, 0, 0]);
  });
});

describe('answer size without usage', () => {
  it('counts message text and tool calls, not the JSON envelope', () => {
    const completion = {
      id: 'x', object: 'chat.completion', created: 1, model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hello', tool_calls: [{ id: 't', type: 'function', function: { name: 'get', arguments: '{"a":1}' } }] }, finish_reason: 'stop' }],
    };
    expect(answerChars(completion)).toBe(5 + 3 + 7);
    expect(answerChars({ choices: [{ message: { content: [{ type: 'text', text: 'abc' }] } }] })).toBe(3);
    expect(answerChars({ choices: 'nope' })).toBe(0);
  });
});
