/**
 * Serialize once, send many times. A live event goes to every subscriber of its organization
 * (2,000 sockets in bench/live-fanout); tRPC serializes each outgoing message on its own, with
 * superjson then JSON.stringify. Values marked with `shareOutput` (the bus's events, which are
 * never changed after they are made) are serialized on their first send and the result reused for
 * every other subscriber; only the per-subscription envelope (its id) is written per message.
 *
 * The bytes on the wire are exactly those tRPC would have written (tests/unit/shared-output.test.ts).
 */
import superjson from 'superjson';
import { jsonEncoder, type Encoder } from '@trpc/server/adapters/ws';

type Serialized = ReturnType<typeof superjson.serialize>;

/** Values whose serialized form may be reused: never mutated after being marked. */
const shared = new WeakSet<object>();
/** Per shared value: its superjson form bare and as a tracked envelope `{id, data}`. */
const bare = new WeakMap<object, Serialized>();
const envelope = new WeakMap<object, Serialized>();
/** The JSON text of a serialized form that came from the caches above. */
const jsonOf = new WeakMap<object, string>();

/** Marks `value` as immutable from now on, so its serialized form can be shared. */
export function shareOutput<T extends object>(value: T): T {
  shared.add(value);
  return value;
}

function cached(cache: WeakMap<object, Serialized>, key: object, value: unknown): Serialized {
  let result = cache.get(key);
  if (!result) {
    result = superjson.serialize(value);
    jsonOf.set(result, JSON.stringify(result));
    cache.set(key, result);
  }
  return result;
}

/** The router's output transformer: superjson, with shared values serialized once. */
export const sharedOutputTransformer = {
  serialize(value: unknown): Serialized {
    if (typeof value === 'object' && value !== null) {
      if (shared.has(value)) return cached(bare, value, value);
      // A tracked event reaches the transformer as a fresh {id, data} per subscriber.
      const v = value as { id?: unknown; data?: unknown };
      if (typeof v.data === 'object' && v.data !== null && shared.has(v.data) && isEnvelope(v) && (v.data as { id?: unknown }).id === v.id) {
        return cached(envelope, v.data, value);
      }
    }
    return superjson.serialize(value);
  },
  deserialize: superjson.deserialize,
};

function isEnvelope(v: object): boolean {
  let n = 0;
  for (const key in v) {
    if (key !== 'id' && key !== 'data') return false;
    n++;
  }
  return n === 2;
}

const plainKeys = (o: object, allowed: string[]) => Object.keys(o).every((k) => allowed.includes(k));

/**
 * The WebSocket encoder: JSON text frames, as tRPC's default, writing a shared serialized payload
 * from its cached text. Key order is the one tRPC builds (`{id, jsonrpc, result: {type, data, id}}`);
 * any other shape is left to JSON.stringify.
 */
export const sharedJsonEncoder: Encoder = {
  encode(message: unknown): ReturnType<Encoder["encode"]> {
    const m = message as { id?: unknown; jsonrpc?: unknown; result?: { type?: unknown; data?: unknown; id?: unknown } };
    const data = m?.result?.data;
    const text = typeof data === 'object' && data !== null ? jsonOf.get(data) : undefined;
    if (text === undefined || !plainKeys(m, ['id', 'jsonrpc', 'result']) || !plainKeys(m.result!, ['type', 'data', 'id']) || m.result!.type !== 'data') {
      return jsonEncoder.encode(message);
    }
    const r = m.result!;
    let out = '{';
    let first = true;
    const field = (key: string, value: unknown) => {
      if (value === undefined) return;
      out += `${first ? '' : ','}${JSON.stringify(key)}:${JSON.stringify(value)}`;
      first = false;
    };
    for (const key of Object.keys(m)) {
      if (key !== 'result') {
        field(key, m[key as 'id' | 'jsonrpc']);
        continue;
      }
      out += `${first ? '' : ','}"result":{`;
      first = false;
      let innerFirst = true;
      for (const k of Object.keys(r)) {
        const value = k === 'data' ? text : r[k as 'type' | 'id'] === undefined ? undefined : JSON.stringify(r[k as 'type' | 'id']);
        if (value === undefined) continue;
        out += `${innerFirst ? '' : ','}${JSON.stringify(k)}:${value}`;
        innerFirst = false;
      }
      out += '}';
    }
    return out + '}';
  },
  decode: jsonEncoder.decode,
};
