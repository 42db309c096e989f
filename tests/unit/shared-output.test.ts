/**
 * Live events are serialized once for all their subscribers (server/trpc/shared-output.ts): the
 * bytes each subscriber gets must be exactly those tRPC's own superjson + JSON encoding would
 * write, under each subscriber's own subscription id, and unshared values must not be cached.
 */
import { describe, expect, it } from 'vitest';
import superjson from 'superjson';
import { jsonEncoder } from '@trpc/server/adapters/ws';
import { transformTRPCResponse } from '@trpc/server/unstable-core-do-not-import';
import { shareOutput, sharedJsonEncoder, sharedOutputTransformer } from '../../server/trpc/shared-output.js';

const config = { transformer: { input: superjson, output: superjson } } as never;
const sharedConfig = { transformer: { input: superjson, output: sharedOutputTransformer } } as never;

/** What tRPC's ws adapter sends for one data message, with either configuration. */
function wire(cfg: never, encoder: { encode(m: unknown): unknown }, subscriptionId: unknown, jsonrpc: '2.0' | undefined, data: unknown, trackedId?: string) {
  const result: Record<string, unknown> = { type: 'data', data };
  if (trackedId !== undefined) {
    result.id = trackedId;
    result.data = { id: trackedId, data };
  }
  return encoder.encode(transformTRPCResponse(cfg, { id: subscriptionId, jsonrpc, result } as never));
}

describe('shared live output', () => {
  const event = () => ({ type: 'project.updated', projectId: 'p1', name: 'He said "hi" \u2028 ✓', orgId: 'o1', actorId: null, at: '2026-12-02T00:00:00.000Z', id: '42' });

  it('writes byte for byte what tRPC would, for every subscriber, tracked or not', () => {
    const shared = shareOutput(event());
    for (const [subId, rpc] of [[1, undefined], [7, '2.0'], ['x"y', '2.0'], [null, undefined]] as const) {
      expect(wire(sharedConfig, sharedJsonEncoder, subId, rpc, shared, shared.id)).toBe(wire(config, jsonEncoder, subId, rpc, event(), '42'));
      expect(wire(sharedConfig, sharedJsonEncoder, subId, rpc, shared)).toBe(wire(config, jsonEncoder, subId, rpc, event()));
    }
  });

  it('serializes a shared event once, however many subscribers get it', () => {
    const shared = shareOutput(event());
    const first = sharedOutputTransformer.serialize({ id: shared.id, data: shared });
    const again = sharedOutputTransformer.serialize({ id: shared.id, data: shared });
    expect(again).toBe(first);
    expect(first).toEqual(superjson.serialize({ id: '42', data: event() }));
  });

  it('does not cache values that were not shared, nor envelopes that are not plain {id, data}', () => {
    const plain = { when: new Date(0), n: 1n };
    const a = sharedOutputTransformer.serialize(plain);
    plain.n = 2n;
    expect(superjson.deserialize(sharedOutputTransformer.serialize(plain))).toEqual({ when: new Date(0), n: 2n });
    expect(a).not.toBe(sharedOutputTransformer.serialize(plain));
    const shared = shareOutput(event());
    const odd = { id: shared.id, data: shared, extra: true };
    expect(sharedOutputTransformer.serialize(odd)).toEqual(superjson.serialize(odd));
    const otherId = { id: '43', data: shared };
    expect(sharedOutputTransformer.serialize(otherId)).toEqual(superjson.serialize(otherId));
  });

  it('leaves errors and other messages to the default encoder', () => {
    const message = { id: 3, error: { json: { message: 'no' } } };
    expect(sharedJsonEncoder.encode(message)).toBe(JSON.stringify(message));
    expect(sharedJsonEncoder.decode('{"a":1}')).toEqual({ a: 1 });
  });
});
