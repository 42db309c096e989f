/**
 * POST .../embeddings on every fake upstream (OpenAI's embeddings shape), registered at import.
 * Deterministic: each input gets a vector of `dimensions` (default 4) floats derived from its
 * text; prompt tokens are the words of every string input plus the ids of every token array.
 * Directives in an input string: [status:N] (429 with `retry-after: 7`), [nousage].
 * The fake answers floats, or base64 when asked (the gateway never asks: it encodes itself).
 */
import { registerFakeRoute } from './fake-upstream.js';

export function fakeVector(input: string | number[], dimensions: number): number[] {
  const text = typeof input === 'string' ? input : input.join(',');
  let seed = 7;
  for (const c of text) seed = (seed * 31 + c.charCodeAt(0)) % 1000;
  // Float32-exact values (k/8), so base64 (float32) round-trips to the same numbers.
  return Array.from({ length: dimensions }, (_, i) => ((seed + i * 13) % 64) / 8 - 4);
}

export function fakeEmbeddingTokens(input: unknown): number {
  const items = typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'number') ? [input] : (input as unknown[]);
  return items.reduce<number>((n, item) => n + (typeof item === 'string' ? item.split(/\s+/).filter(Boolean).length : (item as number[]).length), 0);
}

registerFakeRoute('/embeddings', ({ res, body }) => {
  const input = body.input as string | string[] | number[] | number[][];
  const items: (string | number[])[] = typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'number') ? [input as string | number[]] : (input as (string | number[])[]);
  const text = items.filter((i): i is string => typeof i === 'string').join(' ');
  const status = /\[status:(\d+)\]/.exec(text);
  if (status) {
    const code = Number(status[1]);
    res.writeHead(code, { 'content-type': 'application/json', ...(code === 429 ? { 'retry-after': '7' } : {}) }).end(JSON.stringify({ error: { message: `fake embeddings failure ${code}`, type: 'server_error' } }));
    return;
  }
  const dimensions = typeof body.dimensions === 'number' ? body.dimensions : 4;
  const base64 = body.encoding_format === 'base64';
  const data = items.map((item, index) => {
    const v = fakeVector(item, dimensions);
    if (!base64) return { object: 'embedding', index, embedding: v };
    const bytes = Buffer.alloc(v.length * 4);
    v.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
    return { object: 'embedding', index, embedding: bytes.toString('base64') };
  });
  const tokens = fakeEmbeddingTokens(input);
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({ object: 'list', data, model: String(body.model), ...(text.includes('[nousage]') ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } }) }),
  );
});
