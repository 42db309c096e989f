/**
 * POST /v1/embeddings (OpenAI's shape): model, input (a string, strings, a token array or token
 * arrays), encoding_format (float | base64), dimensions, user. Served by the OpenAI-compatible
 * embeddings endpoints of OpenAI, Azure OpenAI, Google AI Studio, Alibaba Model Studio and custom
 * providers; metered on usage.prompt_tokens, cached when the project caches, logged as `embeddings`.
 *
 * The upstream is always asked for floats (every provider's default) and the gateway encodes base64
 * itself (little-endian float32, as OpenAI does), so base64 works with every provider and one cache
 * entry serves both encodings.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PROVIDER_LABELS, type TokenUsage } from '../../../shared/models.js';
import { cacheKey, readCache, writeCache } from './cache.js';
import { badRequest, fromUpstreamStatus, GatewayError, upstreamFailed } from './errors.js';
import type { CallerContext } from './runtime.js';
import type { Target } from './targets.js';
import type { ChatRequest } from './upstream/types.js';
import { toCount } from './upstream/types.js';
import { authorizationOf, estimateTokens, onClientGone, retained, runAttempts, runCall, signed, type CallRecord, type CompletionDeps } from './call.js';
import { noFallback } from './routing.js';

/** OpenAI's limit on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;

export interface EmbeddingsRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
  [key: string]: unknown;
}

const isTokenArray = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && (t as number) >= 0);

export function validateEmbeddings(body: unknown): EmbeddingsRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.trim() === '') throw badRequest('model is required (e.g. "openai/text-embedding-3-small")', 'model_required');
  if (b.model.length > 200) throw badRequest('model must be at most 200 characters');
  const input = b.input;
  const ok =
    (typeof input === 'string' && input.length > 0) ||
    isTokenArray(input) ||
    (Array.isArray(input) && input.length > 0 && input.length <= MAX_EMBEDDING_INPUTS && (input.every((s) => typeof s === 'string' && s.length > 0) || input.every(isTokenArray)));
  if (!ok) {
    throw badRequest(
      Array.isArray(input) && input.length > MAX_EMBEDDING_INPUTS
        ? `input takes at most ${MAX_EMBEDDING_INPUTS} items per request`
        : 'input must be a non-empty string, an array of non-empty strings, an array of token ids, or an array of token id arrays',
    );
  }
  if (b.encoding_format !== undefined && b.encoding_format !== 'float' && b.encoding_format !== 'base64') throw badRequest('encoding_format must be "float" or "base64"');
  if (b.dimensions !== undefined && !(Number.isInteger(b.dimensions) && (b.dimensions as number) > 0)) throw badRequest('dimensions must be a positive integer');
  if (b.user !== undefined && typeof b.user !== 'string') throw badRequest('user must be a string');
  if (b.stream !== undefined && b.stream !== false) throw badRequest('embeddings are not streamed: remove stream');
  return b as EmbeddingsRequest;
}

/** A float vector as OpenAI's base64 encoding: the little-endian float32 bytes. */
export function floatsToBase64(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return bytes.toString('base64');
}

export function base64ToFloats(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  const out: number[] = new Array<number>(Math.floor(bytes.length / 4));
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

interface EmbeddingItem {
  object: 'embedding';
  index: number;
  embedding: number[];
}

/** The upstream's answer as floats (a provider answering base64 anyway is decoded), and its usage. */
function parseEmbeddings(label: string, text: string): { model: unknown; data: EmbeddingItem[]; usage: TokenUsage | null } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw upstreamFailed(`${label} sent an embeddings response that is not JSON`, 'upstream_malformed');
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.data)) throw upstreamFailed(`${label} sent an embeddings response without data`, 'upstream_malformed');
  const data = (parsed.data as Record<string, unknown>[]).map((item, i): EmbeddingItem => {
    const e = item?.embedding;
    const embedding = typeof e === 'string' ? base64ToFloats(e) : Array.isArray(e) && e.every((x) => typeof x === 'number') ? (e as number[]) : null;
    if (!embedding) throw upstreamFailed(`${label} sent an embedding that is not a vector`, 'upstream_malformed');
    return { object: 'embedding', index: toCount(item.index) ?? i, embedding };
  });
  const u = parsed.usage as { prompt_tokens?: unknown; total_tokens?: unknown } | undefined;
  const input = toCount(u?.prompt_tokens) ?? toCount(u?.total_tokens);
  return { model: parsed.model, data, usage: input === null ? null : { inputTokens: input, outputTokens: 0, cachedTokens: 0 } };
}

/** About 4 characters a token for strings; a token array is its length. */
function estimateInputTokens(input: EmbeddingsRequest['input']): number {
  if (typeof input === 'string') return estimateTokens(input.length);
  if (isTokenArray(input)) return input.length;
  return (input as (string | number[])[]).reduce<number>((n, item) => n + (typeof item === 'string' ? estimateTokens(item.length) : item.length), 0);
}

const hasTokenArrays = (input: EmbeddingsRequest['input']) => isTokenArray(input) || (Array.isArray(input) && Array.isArray(input[0]));

/** Providers whose OpenAI-compatible embeddings take token id arrays (the others embed text only). */
const TOKEN_INPUT = new Set(['openai', 'azure', 'custom']);

function answer(model: unknown, data: EmbeddingItem[], usage: TokenUsage, base64: boolean) {
  return {
    object: 'list',
    data: base64 ? data.map((d) => ({ object: 'embedding', index: d.index, embedding: floatsToBase64(d.embedding) })) : data,
    model,
    usage: { prompt_tokens: usage.inputTokens, total_tokens: usage.inputTokens },
  };
}

/** What the request log keeps of an answer: its shape, not the vectors. */
const logged = (model: unknown, data: EmbeddingItem[], usage: TokenUsage) => ({
  object: 'list',
  model,
  data: data.map((d) => ({ index: d.index, dimensions: d.embedding.length })),
  usage: { prompt_tokens: usage.inputTokens, total_tokens: usage.inputTokens },
});

export function handleEmbeddings(deps: CompletionDeps, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  return runCall(deps, reply, authorizationOf(req), 'embeddings', async (caller, rec) => {
    const body = validateEmbeddings(req.body);
    rec.model = body.model;
    rec.ask = { promptChars: JSON.stringify(body.input).length, maxOutputTokens: 0 };
    if (rec.retain) rec.requestBody = retained(body);
    await runAttempts(deps, caller, reply, rec, { model: body.model, models: null, projectFallbacks: false, session: null, noFallback: noFallback(req.headers['x-gateway-no-fallback']) }, {
      prepare(target) {
        if (!target.embeddingsUrl) {
          const why =
            target.provider === 'bedrock'
              ? "AWS Bedrock's embedding models use their own request shapes (InvokeModel), which this gateway does not translate"
              : target.provider === 'google'
                ? "Google embeddings are served with a Google AI Studio key; Vertex AI's are not behind its OpenAI-compatible endpoint"
                : `${PROVIDER_LABELS[target.provider]} has no OpenAI-compatible embeddings endpoint`;
          throw badRequest(`model "${target.model}" cannot be used on POST /v1/embeddings: ${why}`, 'model_not_supported');
        }
        if (hasTokenArrays(body.input) && !TOKEN_INPUT.has(target.provider)) {
          throw badRequest(`input as token ids is not supported for model "${target.model}" (${PROVIDER_LABELS[target.provider]} embeds text only): send strings`, 'unsupported_parameter');
        }
      },
      send: (target) => embed(deps, caller, reply, body, target, rec),
    });
  });
}

async function embed(deps: CompletionDeps, caller: CallerContext, reply: FastifyReply, body: EmbeddingsRequest, target: Target, rec: CallRecord) {
  const project = caller.project;
  const base64 = body.encoding_format === 'base64';
  // Upstream always answers floats: the encoding is not part of the request it sees, nor of the cache key.
  const { encoding_format: _encoding, ...upstreamBody } = body;
  // Distinct from chat's keys: the route is prefixed with the endpoint.
  const key = project.cachingEnabled ? cacheKey(`embeddings:${target.provider}`, target.upstreamModel, upstreamBody as unknown as ChatRequest) : null;
  if (key) {
    const hit = await readCache(deps.runtime.query, project.id, key);
    if (hit) {
      const cached = hit.response as { model?: unknown; data?: EmbeddingItem[] };
      const data = Array.isArray(cached.data) ? cached.data : [];
      reply.header('x-gateway-cache', 'hit').type('application/json').send(JSON.stringify(answer(cached.model, data, hit.usage, base64)));
      rec.finish({ status: 200, usage: hit.usage, paidBy: 'cache', cached: true, responseBody: logged(cached.model, data, hit.usage) });
      return;
    }
  }
  const url = target.embeddingsUrl!;
  const payload = JSON.stringify({ ...upstreamBody, model: target.upstreamModel });
  const call = deps.upstream.postJsonWhole(url, signed(target, url, target.headers, payload), payload, deps.config.upstreamTimeoutMs, target.label);
  const client = onClientGone(reply, () => call.abort());
  try {
    const res = await call.response;
    const text = await res.text();
    if (res.status !== 200) throw fromUpstreamStatus(target.label, res.status, text, res.headers);
    const { model, data, usage } = parseEmbeddings(target.label, text);
    const finalUsage = usage ?? { inputTokens: estimateInputTokens(body.input), outputTokens: 0, cachedTokens: 0 };
    if (key) {
      await writeCache(deps.runtime.query, { projectId: project.id, key, provider: target.provider, model: target.model, ttlSeconds: project.cacheTtlSeconds, response: { object: 'list', model, data }, usage: finalUsage });
    }
    if (client.gone()) throw new GatewayError(499, 'client closed the connection', 'server_error', 'canceled');
    reply.header('x-gateway-cache', key ? 'miss' : 'off').type('application/json').send(JSON.stringify(answer(model, data, finalUsage, base64)));
    rec.finish({ status: 200, usage: finalUsage, paidBy: target.paidBy, responseBody: logged(model, data, finalUsage) });
  } catch (err) {
    if (client.gone()) {
      rec.finish({ status: 499, canceled: true, error: 'client closed the connection before the answer' });
      return;
    }
    throw err;
  } finally {
    client.off();
  }
}

/** Registers POST /v1/embeddings in the /v1 scope. */
export function registerEmbeddingsRoutes(scope: FastifyInstance, deps: CompletionDeps): void {
  scope.post('/embeddings', { bodyLimit: deps.config.maxBodyBytes }, (req, reply) => handleEmbeddings(deps, req, reply));
}
