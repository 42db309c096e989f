import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../../server/modules/gateway/sse.js';

/** Feeds `text` to a fresh parser in pieces cut at `cuts`, then ends the stream. */
function parseInPieces(text: string, cuts: number[] = []): SseEvent[] {
  const parser = new SseParser();
  const out: SseEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    out.push(...parser.push(text.slice(at, cut)));
    at = cut;
  }
  out.push(...parser.end());
  return out;
}

describe('the SSE parser', () => {
  it('yields one event per blank-line-terminated block, with its event name', () => {
    const text = 'event: message_start\ndata: {"a":1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n';
    expect(parseInPieces(text)).toEqual([
      { event: 'message_start', data: '{"a":1}' },
      { event: 'ping', data: '{}' },
      { event: null, data: '[DONE]' },
    ]);
  });

  it('gives the same events however the stream is cut, even inside a CRLF or a field name', () => {
    const text = 'event: a\r\ndata: first\r\n\r\ndata: second\r\ndata: line\r\n\r\n: comment\r\nevent: b\r\ndata: third\r\n\r\n';
    const expected = [
      { event: 'a', data: 'first' },
      { event: null, data: 'second\nline' },
      { event: 'b', data: 'third' },
    ];
    for (let cut = 0; cut <= text.length; cut++) expect(parseInPieces(text, [cut]), `cut at ${cut}`).toEqual(expected);
    // And one character at a time.
    expect(parseInPieces(text, Array.from({ length: text.length }, (_, i) => i))).toEqual(expected);
  });

  it('joins multi-line data with newlines and strips exactly one space after the colon', () => {
    expect(parseInPieces('data:no space\ndata:  two spaces\ndata\n\n')).toEqual([{ event: null, data: 'no space\n two spaces\n' }]);
  });

  it('ignores comments, unknown fields and blocks without data; the event name does not leak to the next block', () => {
    const text = ': keep-alive\n\nevent: orphan\n\nid: 7\nretry: 100\ndata: x\n\n';
    expect(parseInPieces(text)).toEqual([{ event: null, data: 'x' }]);
  });

  it('returns nothing until a block is complete, and completes an unterminated last block at end()', () => {
    const parser = new SseParser();
    expect(parser.push('data: par')).toEqual([]);
    expect(parser.push('tial\n')).toEqual([]);
    expect(parser.end()).toEqual([{ event: null, data: 'partial' }]);
    // end() leaves the parser empty.
    expect(parser.end()).toEqual([]);
  });

  it('keeps a multi-byte character split across pushes intact (text is pushed already decoded)', () => {
    const bytes = Buffer.from('data: héllo → 世界\n\n');
    const decoder = new TextDecoder();
    const parser = new SseParser();
    const out: SseEvent[] = [];
    for (const b of bytes) out.push(...parser.push(decoder.decode(Uint8Array.of(b), { stream: true })));
    expect(out).toEqual([{ event: null, data: 'héllo → 世界' }]);
  });
});
