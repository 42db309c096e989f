/** The adapter every OpenAI-compatible provider shares (OpenAI, Azure, Gemini, Vertex, Bedrock, Qwen, custom). */
import { upstreamFailed } from '../errors.js';
import { SseParser } from '../sse.js';
import { openAiUsage, type ChatChunk, type ChatRequest, type ProtocolAdapter } from './types.js';

export function openAiCompatible(label: string, opts: { streamOptions: boolean }): ProtocolAdapter {
  return {
    prepare(body: ChatRequest, upstreamModel: string, stream: boolean) {
      const out: Record<string, unknown> = { ...body, model: upstreamModel };
      if (stream) {
        out.stream = true;
        // Always ask for usage: metering needs it even when the client did not.
        if (opts.streamOptions) out.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
      } else {
        delete out.stream;
        delete out.stream_options;
      }
      return { payload: JSON.stringify(out) };
    },
    parseResponse(text: string) {
      let completion: Record<string, unknown>;
      try {
        completion = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw upstreamFailed(`${label} sent a response that is not JSON`, 'upstream_malformed');
      }
      if (!completion || typeof completion !== 'object' || !Array.isArray(completion.choices)) {
        throw upstreamFailed(`${label} sent a response without choices`, 'upstream_malformed');
      }
      // The answer is already OpenAI's shape: its bytes go to the client unchanged.
      return { completion, usage: openAiUsage(completion.usage), passThrough: true };
    },
    async *streamChunks(body: AsyncIterable<Buffer>) {
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let done = false;
      let finished = false;
      const handle = function* (events: { data: string }[]): Generator<ChatChunk> {
        for (const e of events) {
          if (done) return;
          if (e.data === '[DONE]') {
            done = true;
            return;
          }
          let chunk: ChatChunk;
          try {
            chunk = JSON.parse(e.data) as ChatChunk;
          } catch {
            throw upstreamFailed(`${label} sent a malformed stream event`, 'upstream_malformed');
          }
          if (!chunk || typeof chunk !== 'object') throw upstreamFailed(`${label} sent a malformed stream event`, 'upstream_malformed');
          if (chunk.error) {
            const m = (chunk.error as { message?: unknown }).message;
            throw upstreamFailed(`${label} failed mid-stream: ${typeof m === 'string' ? m : 'unknown error'}`);
          }
          if (chunk.usage || chunk.choices?.some((c) => c.finish_reason)) finished = true;
          yield chunk;
        }
      };
      for await (const bytes of body) {
        yield* handle(parser.push(decoder.decode(bytes, { stream: true })));
        if (done) return;
      }
      yield* handle(parser.end());
      if (!done && !finished) throw upstreamFailed(`${label} ended the stream early (no [DONE])`, 'upstream_truncated');
    },
  };
}
