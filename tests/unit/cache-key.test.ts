/**
 * Response cache keys: identical requests (apart from stream, stream_options and user, and the
 * client's spelling of the model) share a key; any difference in what the model is asked gives
 * another key. Property order in the JSON body does not matter.
 */
import { describe, expect, it } from 'vitest';
import { cacheKey } from '../../server/modules/gateway/cache.js';
import type { ChatRequest } from '../../server/modules/gateway/upstream/types.js';

const base = (): ChatRequest => ({
  model: 'openai/gpt-4o-mini',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] },
  ],
  temperature: 0.2,
  tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }],
});
const key = (body: ChatRequest, provider = 'openai', model = 'gpt-4o-mini') => cacheKey(provider, model, body).toString('hex');

describe('response cache keys', () => {
  it('is a SHA-256 digest, the same for the same request every time', () => {
    expect(cacheKey('openai', 'gpt-4o-mini', base())).toHaveLength(32);
    expect(key(base())).toBe(key(base()));
  });

  it('ignores property order at every depth', () => {
    const b = base();
    const reordered: ChatRequest = {
      tools: [{ function: { parameters: { properties: { a: { type: 'string' } }, type: 'object' }, name: 'f' }, type: 'function' }],
      temperature: 0.2,
      messages: [
        { content: 'Be brief.', role: 'system' },
        { content: [{ text: 'Hello', type: 'text' }, { image_url: { detail: 'low', url: 'https://example.com/a.png' }, type: 'image_url' }], role: 'user' },
      ],
      model: b.model,
    };
    expect(key(reordered)).toBe(key(b));
  });

  it('ignores stream, stream_options, user, undefined fields and the client’s model name (the upstream model counts)', () => {
    const plain = key(base());
    expect(key({ ...base(), stream: true, stream_options: { include_usage: true } })).toBe(plain);
    expect(key({ ...base(), user: 'end-user-7' })).toBe(plain);
    expect(key({ ...base(), seed: undefined })).toBe(plain);
    expect(key({ ...base(), model: 'gpt-4o-mini' })).toBe(plain);
  });

  it('differs for a different provider or upstream model', () => {
    const plain = key(base());
    expect(key(base(), 'azure')).not.toBe(plain);
    expect(key(base(), 'openai', 'gpt-4o')).not.toBe(plain);
    // The separator keeps "a\nb" + "c" apart from "a" + "b\nc".
    expect(cacheKey('a', 'bc', base()).equals(cacheKey('ab', 'c', base()))).toBe(false);
  });

  it('differs for any change to what the model is asked', () => {
    const plain = key(base());
    const variants: [string, (b: ChatRequest) => void][] = [
      ['a message text', (b) => ((b.messages[0]!.content as string) = 'Be verbose.')],
      ['a nested text part', (b) => (((b.messages[1]!.content as { text?: string }[])[0]!.text = 'Hello!'))],
      ['an image detail', (b) => (((b.messages[1]!.content as { image_url?: { detail: string } }[])[1]!.image_url!.detail = 'high'))],
      ['the message order', (b) => b.messages.reverse()],
      ['a role', (b) => (b.messages[0]!.role = 'developer')],
      ['an extra message', (b) => b.messages.push({ role: 'user', content: 'Hello' })],
      ['the temperature', (b) => (b.temperature = 0.3)],
      ['a number turned string', (b) => (b.temperature = '0.2')],
      ['a new parameter', (b) => (b.max_tokens = 10)],
      ['a null parameter', (b) => (b.seed = null)],
      ['a tool schema', (b) => (((b.tools as { function: { parameters: { properties: Record<string, unknown> } } }[])[0]!.function.parameters.properties.a = { type: 'number' }))],
      ['the response format', (b) => (b.response_format = { type: 'json_object' })],
    ];
    const seen = new Set([plain]);
    for (const [what, change] of variants) {
      const b = base();
      change(b);
      const k = key(b);
      expect(k, what).not.toBe(plain);
      expect(seen.has(k), `${what} collides with another variant`).toBe(false);
      seen.add(k);
    }
  });

  it('does not let a key that contains the separator or quotes collide with a different structure', () => {
    const a = key({ model: 'm', messages: [{ role: 'user', content: 'x' }], 'a":1,"b': 2 });
    const b = key({ model: 'm', messages: [{ role: 'user', content: 'x' }], a: 1, b: 2 });
    expect(a).not.toBe(b);
  });
});
