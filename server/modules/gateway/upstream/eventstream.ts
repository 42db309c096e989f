/**
 * AWS event stream framing (`application/vnd.amazon.eventstream`), which Bedrock's
 * InvokeModelWithResponseStream answers in. A message is:
 *   total length (u32 BE) | headers length (u32 BE) | CRC32 of those 8 bytes (u32 BE)
 *   | headers | payload | CRC32 of everything before it (u32 BE)
 * and a header is: name length (u8) | name | value type (u8) | value. Both CRCs are checked, so a
 * corrupted or truncated stream is an error, never a wrong answer.
 */
import { crc32 } from 'node:zlib';

export type HeaderValue = string | number | bigint | boolean | Buffer;

export interface EventMessage {
  headers: Record<string, HeaderValue>;
  payload: Buffer;
}

export class EventStreamError extends Error {}

const PRELUDE = 12;
const MAX_MESSAGE = 16 * 1024 * 1024;

function readHeaders(buf: Buffer): Record<string, HeaderValue> {
  const headers: Record<string, HeaderValue> = {};
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new EventStreamError('event stream header runs past its message');
  };
  while (at < buf.length) {
    need(1);
    const nameLength = buf.readUInt8(at);
    at += 1;
    need(nameLength + 1);
    const name = buf.toString('utf8', at, at + nameLength);
    at += nameLength;
    const type = buf.readUInt8(at);
    at += 1;
    let value: HeaderValue;
    switch (type) {
      case 0:
        value = true;
        break;
      case 1:
        value = false;
        break;
      case 2:
        need(1);
        value = buf.readInt8(at);
        at += 1;
        break;
      case 3:
        need(2);
        value = buf.readInt16BE(at);
        at += 2;
        break;
      case 4:
        need(4);
        value = buf.readInt32BE(at);
        at += 4;
        break;
      case 5:
      case 8: // timestamp: milliseconds since the epoch
        need(8);
        value = buf.readBigInt64BE(at);
        at += 8;
        break;
      case 6:
      case 7: {
        need(2);
        const length = buf.readUInt16BE(at);
        at += 2;
        need(length);
        value = type === 7 ? buf.toString('utf8', at, at + length) : Buffer.from(buf.subarray(at, at + length));
        at += length;
        break;
      }
      case 9:
        need(16);
        value = Buffer.from(buf.subarray(at, at + 16));
        at += 16;
        break;
      default:
        throw new EventStreamError(`unknown event stream header type ${type}`);
    }
    headers[name] = value;
  }
  return headers;
}

/** Incremental decoder: feed bytes as they arrive, get the messages they complete. */
export class EventStreamDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): EventMessage[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: EventMessage[] = [];
    while (this.buffer.length >= PRELUDE) {
      const total = this.buffer.readUInt32BE(0);
      const headersLength = this.buffer.readUInt32BE(4);
      if (crc32(this.buffer.subarray(0, 8)) !== this.buffer.readUInt32BE(8)) throw new EventStreamError('event stream prelude checksum mismatch');
      if (total < PRELUDE + 4 + headersLength || total > MAX_MESSAGE) throw new EventStreamError(`event stream message of impossible length ${total}`);
      if (this.buffer.length < total) break;
      const message = this.buffer.subarray(0, total);
      if (crc32(message.subarray(0, total - 4)) !== message.readUInt32BE(total - 4)) throw new EventStreamError('event stream message checksum mismatch');
      out.push({ headers: readHeaders(message.subarray(PRELUDE, PRELUDE + headersLength)), payload: Buffer.from(message.subarray(PRELUDE + headersLength, total - 4)) });
      this.buffer = this.buffer.subarray(total);
    }
    return out;
  }

  /** True when bytes of an unfinished message are left over. */
  get pending(): boolean {
    return this.buffer.length > 0;
  }
}

/** Encodes one message with string headers (what Bedrock sends; used by the tests' fake Bedrock). */
export function encodeEventMessage(headers: Record<string, string>, payload: Buffer | string): Buffer {
  const headerParts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(7, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    headerParts.push(h);
  }
  const headerBytes = Buffer.concat(headerParts);
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const total = PRELUDE + headerBytes.length + body.length + 4;
  const message = Buffer.alloc(total);
  message.writeUInt32BE(total, 0);
  message.writeUInt32BE(headerBytes.length, 4);
  message.writeUInt32BE(crc32(message.subarray(0, 8)), 8);
  headerBytes.copy(message, PRELUDE);
  body.copy(message, PRELUDE + headerBytes.length);
  message.writeUInt32BE(crc32(message.subarray(0, total - 4)), total - 4);
  return message;
}
