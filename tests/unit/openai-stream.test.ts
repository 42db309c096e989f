import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import { openAiCompatible, OpenAiStreamReader } from '../../server/modules/gateway/upstream/openai.js';
import type { ChatChunk } from '../../server/modules/gateway/upstream/types.js';

interface Read {
  chunks: ChatChunk[];
  /** Each chunk's bytes as the reader kept them (null: to be serialized again). */
  raws: (string | null)[];
  error: unknown;
  done: boolean;
}

/** Feeds `bytes` to a fresh reader in pieces cut at `cuts` (byte offsets), then ends the stream. */
function read(bytes: Buffer, cuts: number[] = []): Read {
  const reader = new OpenAiStreamReader('testai');
  const out: Read = { chunks: [], raws: [], error: null, done: false };
  const emit = (chunk: ChatChunk, raw: Buffer | null) => {
    out.chunks.push(chunk);
    out.raws.push(raw ? raw.toString('utf8') : null);
  };
  let at = 0;
  try {
    for (const cut of [...cuts, bytes.length]) {
      // A copy: the reader must not depend on the upstream's buffers being one.
      reader.push(Buffer.from(bytes.subarray(at, cut)), emit);
      at = cut;
      if (reader.done) break;
    }
    reader.end(emit);
  } catch (err) {
    out.error = err;
  }
  out.done = reader.done;
  return out;
}

const event = (chunk: unknown) => `data: ${JSON.stringify(chunk)}\n\n`;
const delta = (content: string, finish: string | null = null) => ({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });
const usageChunk = { id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } };

describe('the OpenAI stream reader (chat completions pass-through)', () => {
  // Upstream's own spelling: spaces, an escaped character, a raw multi-byte one (2, 3 and 4 bytes).
  const first = 'data: {"id":"c1", "object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"caf\\u00e9 "},"finish_reason":null}]}\n\n';
  const second = `data:${JSON.stringify(delta('é → 世界 🙂 '))}\n\n`;
  const stream = Buffer.from(first + second + event(delta('', 'stop')) + event(usageChunk) + 'data: [DONE]\n\ndata: {"after":"done"}\n\n');
  const expectedChunks = [
    { id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: 'café ' }, finish_reason: null }] },
    delta('é → 世界 🙂 '),
    delta('', 'stop'),
    usageChunk,
  ];

  it("keeps each event's bytes exactly as the upstream sent them, and parses its chunk", () => {
    const got = read(stream);
    expect(got.error).toBeNull();
    expect(got.done).toBe(true);
    expect(got.chunks).toEqual(expectedChunks);
    expect(got.raws).toEqual([first, second, event(delta('', 'stop')), event(usageChunk)]);
  });

  it('gives the same chunks and bytes however the reads are cut: inside an event, a line end, a multi-byte character', () => {
    const whole = read(stream);
    for (let cut = 0; cut <= stream.length; cut++) expect(read(stream, [cut]), `cut at ${cut}`).toEqual(whole);
    // One byte at a time (every UTF-8 character split).
    expect(read(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(whole);
    // Two cuts close together, around the 4-byte emoji.
    const emoji = stream.indexOf(Buffer.from('🙂'));
    for (let a = emoji - 2; a <= emoji + 4; a++) for (let b = a; b <= emoji + 6; b++) expect(read(stream, [a, b]), `cuts at ${a}, ${b}`).toEqual(whole);
  });

  it('reads usage from the last chunk and ends at [DONE]; nothing after [DONE] is read', () => {
    const got = read(stream);
    expect(got.chunks.at(-1)!.usage).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
    expect(got.chunks.some((c) => 'after' in c)).toBe(false);
  });

  it('reads any other SSE form through the general parser, its chunks to be serialized again (no bytes)', () => {
    // Comments, an event name, data on two lines, blank lines between events.
    const odd = Buffer.from(`: keep-alive\n\n${event(delta('a'))}\nevent: x\ndata: ${JSON.stringify(delta('b'))}\n\ndata: {"id":"c1","choices":\ndata: [{"index":0,"delta":{"content":"c"},"finish_reason":"stop"}]}\n\n\n\ndata: [DONE]\n\n`);
    const got = read(odd);
    expect(got.error).toBeNull();
    expect(got.chunks.map((c) => c.choices![0]!.delta!.content)).toEqual(['a', 'b', 'c']);
    expect(got.raws).toEqual([event(delta('a')), null, null]);
    for (let cut = 0; cut <= odd.length; cut++) expect(read(odd, [cut]).chunks, `cut at ${cut}`).toEqual(got.chunks);
  });

  it('switches to the general parser for CRLF line ends, however the stream is cut', () => {
    const crlf = Buffer.from(`${event(delta('one '))}${event(delta('two ')).replaceAll('\n', '\r\n')}${event(delta('tré ', 'stop')).replaceAll('\n', '\r\n')}data: [DONE]\r\n\r\n`);
    const expected = [delta('one '), delta('two '), delta('tré ', 'stop')];
    for (let cut = 0; cut <= crlf.length; cut++) {
      const got = read(crlf, [cut]);
      expect(got.error, `cut at ${cut}`).toBeNull();
      expect(got.chunks, `cut at ${cut}`).toEqual(expected);
      expect(got.done).toBe(true);
    }
  });

  it('throws at a malformed event or an upstream error event, after emitting the chunks before it', () => {
    const malformed = read(Buffer.from(`${event(delta('ok '))}data: {"broken": \n\n${event(delta('never'))}`));
    expect(malformed.chunks).toEqual([delta('ok ')]);
    expect(malformed.error).toBeInstanceOf(GatewayError);
    expect((malformed.error as GatewayError).code).toBe('upstream_malformed');

    const failed = read(Buffer.from(`${event(delta('ok '))}${event({ error: { message: 'overloaded', type: 'server_error' } })}`));
    expect(failed.chunks).toEqual([delta('ok ')]);
    expect((failed.error as GatewayError).message).toBe('testai failed mid-stream: overloaded');
  });

  it('at the end: an unterminated last event counts; a stream cut before its end (no finish, usage or [DONE]) is truncated', () => {
    const unterminated = read(Buffer.from(`${event(delta('a'))}data: ${JSON.stringify(delta('b', 'stop'))}`));
    expect(unterminated.error).toBeNull();
    expect(unterminated.chunks).toEqual([delta('a'), delta('b', 'stop')]);

    const cut = read(Buffer.from(`${event(delta('a'))}${event(delta('b'))}`));
    expect(cut.chunks).toEqual([delta('a'), delta('b')]);
    expect((cut.error as GatewayError).code).toBe('upstream_truncated');
  });

  it('gives the adapter the same chunks through streamChunks, a failing event after those before it', async () => {
    const adapter = openAiCompatible('testai', { streamOptions: true });
    async function* reads(bytes: Buffer, size: number) {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    }
    const collect = async (bytes: Buffer, size: number) => {
      const chunks: ChatChunk[] = [];
      let error: unknown = null;
      try {
        for await (const c of adapter.streamChunks(reads(bytes, size))) chunks.push(c);
      } catch (err) {
        error = err;
      }
      return { chunks, error };
    };
    for (const size of [1, 7, stream.length]) expect(await collect(stream, size)).toEqual({ chunks: expectedChunks, error: null });
    const failing = await collect(Buffer.from(`${event(delta('ok '))}data: {"broken": \n\n`), 1000);
    expect(failing.chunks).toEqual([delta('ok ')]);
    expect((failing.error as GatewayError).code).toBe('upstream_malformed');
  });
});
