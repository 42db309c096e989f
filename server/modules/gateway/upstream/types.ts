import type { TokenUsage } from '../../../../shared/models.js';

/** The OpenAI chat request as clients send it (validated loosely: providers check the rest). */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: string;
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  [key: string]: unknown;
}

/** An OpenAI `chat.completion.chunk` (or anything a provider puts in its place). */
export type ChatChunk = Record<string, unknown> & {
  choices?: { index?: number; delta?: { content?: string | null; tool_calls?: { function?: { arguments?: string } }[] }; finish_reason?: string | null }[];
  usage?: Record<string, unknown> | null;
  error?: unknown;
};

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  payload: string;
}

export interface ProtocolAdapter {
  /** Builds the upstream request for a chat request already pointed at the upstream model. */
  prepare(body: ChatRequest, upstreamModel: string, stream: boolean, maxOutputTokens: number | null): { payload: string };
  /** Upstream's successful non-streaming answer, as an OpenAI chat.completion, and its usage. */
  parseResponse(text: string): { completion: Record<string, unknown>; usage: TokenUsage | null; passThrough?: boolean };
  /** Upstream's stream as OpenAI chunks; the last one carries `usage` with empty `choices`. */
  streamChunks(body: AsyncIterable<Buffer>): AsyncGenerator<ChatChunk>;
  /**
   * Only when the upstream already streams OpenAI chunks: a reader that keeps each event's bytes
   * with its chunk, so chat completions can pass unchanged events through without serializing them.
   */
  streamReader?(): ChunkStreamReader;
}

/** Reads an upstream's OpenAI event stream read by read (upstream/openai.ts OpenAiStreamReader). */
export interface ChunkStreamReader {
  /** `[DONE]` came: nothing more is read. */
  readonly done: boolean;
  /** One read: `emit` gets each completed event's chunk, with the event's bytes when they may go out unchanged (else null). Throws at a malformed or error event, after the events before it. */
  push(bytes: Buffer, emit: (chunk: ChatChunk, raw: Buffer | null) => void): void;
  /** The stream ended: emits an unterminated last event; throws when the stream stopped before its end. */
  end(emit: (chunk: ChatChunk, raw: Buffer | null) => void): void;
}

export function openAiUsage(u: unknown): TokenUsage | null {
  if (!u || typeof u !== 'object') return null;
  const usage = u as { prompt_tokens?: unknown; completion_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown; cache_write_tokens?: unknown } | null };
  const input = toCount(usage.prompt_tokens);
  const output = toCount(usage.completion_tokens);
  if (input === null && output === null) return null;
  const written = toCount(usage.prompt_tokens_details?.cache_write_tokens) ?? 0;
  return { inputTokens: input ?? 0, outputTokens: output ?? 0, cachedTokens: toCount(usage.prompt_tokens_details?.cached_tokens) ?? 0, ...(written > 0 ? { cacheWriteTokens: written } : {}) };
}

export function toCount(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(Math.floor(v), 2_000_000_000) : null;
}

/**
 * Usage known before the stream ends (Anthropic reports prompt tokens at message_start), carried on
 * a chunk under this symbol so JSON serialization never shows it to the client.
 */
export const PARTIAL_USAGE = Symbol('partialUsage');
