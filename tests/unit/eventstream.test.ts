import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeEventMessage, EventStreamDecoder, EventStreamError } from '../../server/modules/gateway/upstream/eventstream.js';

const chunk = (text: string) => encodeEventMessage({ ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' }, JSON.stringify({ bytes: Buffer.from(text).toString('base64') }));

describe('AWS event stream decoder', () => {
  it('decodes messages split at every possible byte boundary', () => {
    const stream = Buffer.concat([chunk('{"a":1}'), chunk('{"b":"two"}'), chunk('')]);
    for (let cut = 1; cut < stream.length; cut++) {
      const decoder = new EventStreamDecoder();
      const messages = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      expect(messages.map((m) => Buffer.from((JSON.parse(m.payload.toString()) as { bytes: string }).bytes, 'base64').toString())).toEqual(['{"a":1}', '{"b":"two"}', '']);
      expect(messages[0]!.headers).toEqual({ ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' });
      expect(decoder.pending).toBe(false);
    }
  });

  it('refuses a message whose prelude or body checksum is wrong', () => {
    const good = chunk('{"a":1}');
    const badPrelude = Buffer.from(good);
    badPrelude.writeUInt8(badPrelude.readUInt8(9) ^ 0xff, 9);
    expect(() => new EventStreamDecoder().push(badPrelude)).toThrow(EventStreamError);
    const badBody = Buffer.from(good);
    badBody.writeUInt8(badBody.readUInt8(good.length - 8) ^ 0x01, good.length - 8);
    expect(() => new EventStreamDecoder().push(badBody)).toThrow(/message checksum/);
  });

  it('reads every header value type', () => {
    // name "n" with an int32 (type 4), "b" as bool true (type 0), "t" as a timestamp (type 8), "l" as an int64 (type 5)
    const headers = Buffer.from([1, 0x6e, 4, 0, 0, 1, 0, 1, 0x62, 0, 1, 0x74, 8, 0, 0, 0, 0, 0, 0, 0, 42, 1, 0x6c, 5, 0, 0, 0, 0, 0, 0, 0, 7]);
    const total = 12 + headers.length + 4;
    const message = Buffer.alloc(total);
    message.writeUInt32BE(total, 0);
    message.writeUInt32BE(headers.length, 4);
    message.writeUInt32BE(crc32(message.subarray(0, 8)), 8);
    headers.copy(message, 12);
    message.writeUInt32BE(crc32(message.subarray(0, total - 4)), total - 4);
    const [decoded] = new EventStreamDecoder().push(message);
    expect(decoded!.headers).toEqual({ n: 256, b: true, t: new Date(42), l: 7n });
    expect(decoded!.payload.length).toBe(0);
  });
});
