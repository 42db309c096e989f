/** The adapter every OpenAI-compatible provider shares (OpenAI, Azure, Gemini, Vertex, Bedrock, Qwen, custom). */
import { upstreamFailed } from '../errors.js';
import { SseParser, type SseEvent } from '../sse.js';
import { openAiUsage, type ChatChunk, type ChatRequest, type ChunkStreamReader, type ProtocolAdapter } from './types.js';

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
    streamReader: () => new OpenAiStreamReader(label),
    async *streamChunks(body: AsyncIterable<Buffer>) {
      const reader = new OpenAiStreamReader(label);
      const got: ChatChunk[] = [];
      const emit = (chunk: ChatChunk) => void got.push(chunk);
      let failure: unknown = null;
      for await (const bytes of body) {
        try {
          reader.push(bytes, emit);
        } catch (err) {
          failure = err;
        }
        // The chunks before a failing event are delivered first, then the failure.
        yield* got.splice(0);
        if (failure) throw failure;
        if (reader.done) return;
      }
      try {
        reader.end(emit);
      } catch (err) {
        failure = err;
      }
      yield* got.splice(0);
      if (failure) throw failure;
    },
  };
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
/** The end of an event: a line end, then an empty line. */
const BLANK_LINE = Buffer.from('\n\n');
/** `data:` */
const DATA = [0x64, 0x61, 0x74, 0x61, 0x3a] as const;

/**
 * Reads an OpenAI-compatible event stream event by event, on bytes. Each event's chunk is parsed
 * (metering needs its content, usage and end) and comes with the event's own bytes, so a chunk the
 * gateway does not change goes to an OpenAI client as the upstream sent it, never serialized again.
 * An event is complete at its blank line and decoded whole, so an event or a multi-byte character
 * split across reads is read intact. The usual form (`data: <json>` ended by a blank line, LF line
 * ends) is read directly; anything else (an `event:` or comment line, data on several lines) goes
 * through the general SSE parser and its chunk comes without bytes (null); from the first CR on
 * (CRLF or CR line ends) the whole rest of the stream does.
 */
export class OpenAiStreamReader implements ChunkStreamReader {
  /** `[DONE]` came: the rest of the stream is ignored. */
  done = false;
  /** A chunk carried usage or a finish_reason: an end without `[DONE]` is a complete stream. */
  private finished = false;
  /** The bytes of an event not complete yet. */
  private rest: Buffer | null = null;
  /** From the first CR on: the general parser, on decoded text. */
  private parser: SseParser | null = null;
  private decoder: TextDecoder | null = null;

  constructor(private readonly label: string) {}

  /**
   * Feeds one read of the stream. `emit` gets each completed event's chunk, with the event's bytes
   * when they are exactly one `data:` line (else null). A malformed event or an upstream error
   * event throws, after the events before it were emitted.
   */
  push(bytes: Buffer, emit: (chunk: ChatChunk, raw: Buffer | null) => void): void {
    if (this.done) return;
    if (this.parser) return this.events(this.parser.push(this.decoder!.decode(bytes, { stream: true })), emit);
    const buf = this.rest ? Buffer.concat([this.rest, bytes]) : bytes;
    this.rest = null;
    if (buf.indexOf(CR) >= 0) {
      // A raw CR can only be a line end (JSON escapes it inside strings): the general parser takes over.
      this.parser = new SseParser();
      this.decoder = new TextDecoder();
      return this.events(this.parser.push(this.decoder.decode(buf, { stream: true })), emit);
    }
    let start = 0;
    while (!this.done) {
      const end = buf.indexOf(BLANK_LINE, start);
      if (end < 0) {
        if (start < buf.length) this.rest = buf.subarray(start);
        return;
      }
      const next = end + 2;
      if (end - start > DATA.length && buf[start] === DATA[0] && buf[start + 1] === DATA[1] && buf[start + 2] === DATA[2] && buf[start + 3] === DATA[3] && buf[start + 4] === DATA[4] && buf.indexOf(LF, start) === end) {
        // One data line: its JSON is the chunk, and the event's bytes can go out as they are.
        const chunk = this.chunk(buf.toString('utf8', start + (buf[start + 5] === SPACE ? 6 : 5), end));
        if (chunk) emit(chunk, buf.subarray(start, next));
      } else if (end > start) {
        this.events(new SseParser().push(buf.toString('utf8', start, next)), emit);
      }
      start = next;
    }
  }

  /** The stream ended: an event not closed by a blank line still counts; throws when the stream stopped short. */
  end(emit: (chunk: ChatChunk, raw: Buffer | null) => void): void {
    if (!this.done) {
      if (this.parser) {
        this.events(this.parser.push(this.decoder!.decode()), emit);
        this.events(this.parser.end(), emit);
      } else if (this.rest) {
        const parser = new SseParser();
        const text = this.rest.toString('utf8');
        this.rest = null;
        this.events(parser.push(text), emit);
        this.events(parser.end(), emit);
      }
    }
    if (!this.done && !this.finished) throw upstreamFailed(`${this.label} ended the stream early (no [DONE])`, 'upstream_truncated');
  }

  private events(events: SseEvent[], emit: (chunk: ChatChunk, raw: Buffer | null) => void): void {
    for (const e of events) {
      if (this.done) return;
      const chunk = this.chunk(e.data);
      if (chunk) emit(chunk, null);
    }
  }

  /** One event's data as a chunk; null at `[DONE]`. */
  private chunk(data: string): ChatChunk | null {
    if (data === '[DONE]') {
      this.done = true;
      return null;
    }
    let chunk: ChatChunk;
    try {
      chunk = JSON.parse(data) as ChatChunk;
    } catch {
      throw upstreamFailed(`${this.label} sent a malformed stream event`, 'upstream_malformed');
    }
    if (!chunk || typeof chunk !== 'object') throw upstreamFailed(`${this.label} sent a malformed stream event`, 'upstream_malformed');
    if (chunk.error) {
      const m = (chunk.error as { message?: unknown }).message;
      throw upstreamFailed(`${this.label} failed mid-stream: ${typeof m === 'string' ? m : 'unknown error'}`);
    }
    if (!this.finished && (chunk.usage || chunk.choices?.some((c) => c.finish_reason))) this.finished = true;
    return chunk;
  }
}
