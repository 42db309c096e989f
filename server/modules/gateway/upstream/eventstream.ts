/**
 * AWS event stream framing (`application/vnd.amazon.eventstream`), which Bedrock's
 * InvokeModelWithResponseStream answers in. A message is:
 *   total length (u32 BE) | headers length (u32 BE) | CRC32 of those 8 bytes (u32 BE)
 *   | headers | payload | CRC32 of everything before it (u32 BE)
 *
 * Decoding and encoding a message (both checksums, every header type) is @smithy/eventstream-codec,
 * the AWS SDK's own codec. Kept here: cutting the byte stream into whole messages (the codec takes
 * one complete message at a time), with the prelude checksum checked before its length is trusted,
 * so a corrupted or truncated stream is an error, never a wrong answer or an endless wait.
 */
import { crc32 } from 'node:zlib';
import { EventStreamCodec, type MessageHeaders, type MessageHeaderValue } from '@smithy/eventstream-codec';

export type HeaderValue = string | number | bigint | boolean | Buffer | Date;

export interface EventMessage {
  headers: Record<string, HeaderValue>;
  payload: Buffer;
}

export class EventStreamError extends Error {}

const PRELUDE = 12;
const MAX_MESSAGE = 16 * 1024 * 1024;

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
  (text) => Buffer.from(text, 'utf8'),
);

function plainValue(header: MessageHeaderValue): HeaderValue {
  switch (header.type) {
    case 'long':
      return BigInt(header.value.toString());
    case 'binary':
      return Buffer.from(header.value);
    default:
      return header.value;
  }
}

function plainHeaders(headers: MessageHeaders): Record<string, HeaderValue> {
  const out: Record<string, HeaderValue> = {};
  for (const [name, header] of Object.entries(headers)) out[name] = plainValue(header);
  return out;
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
      let decoded;
      try {
        decoded = codec.decode(this.buffer.subarray(0, total));
      } catch (err) {
        throw new EventStreamError(`event stream message refused: ${(err as Error).message}`);
      }
      out.push({ headers: plainHeaders(decoded.headers), payload: Buffer.from(decoded.body) });
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
  const tagged: MessageHeaders = {};
  for (const [name, value] of Object.entries(headers)) tagged[name] = { type: 'string', value };
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.from(codec.encode({ headers: tagged, body }));
}
