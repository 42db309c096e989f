/**
 * The tRPC context forks its EntityManager only when something uses it, and never hands that fork
 * on through a spread: a WebSocket's context lives as long as the socket, and an eager fork there
 * cost several kilobytes per idle live subscriber (bench/live-fanout).
 */
import { describe, expect, it } from 'vitest';
import { createContextInner } from '../../server/trpc/context.js';
import type { Services } from '../../server/services.js';

function fakeServices() {
  let forks = 0;
  const services = { orm: { em: { fork: () => ({ fork: ++forks }) } } } as unknown as Services;
  return { services, forks: () => forks };
}

describe('tRPC context', () => {
  it('forks no EntityManager until em is read, then keeps the one it forked', () => {
    const { services, forks } = fakeServices();
    const ctx = createContextInner({ services, transport: 'ws' });
    expect(forks()).toBe(0);
    const em = ctx.em;
    expect(forks()).toBe(1);
    expect(ctx.em).toBe(em);
    expect(forks()).toBe(1);
  });

  it('is spread (as tRPC middlewares do) without its em, and keeps every other field', () => {
    const { services, forks } = fakeServices();
    const ctx = createContextInner({ services, sessionId: 's1', connectionId: 'c1', transport: 'ws' });
    const spread = { ...ctx };
    expect(forks()).toBe(0);
    expect('em' in spread).toBe(false);
    expect(spread).toMatchObject({ services, sessionId: 's1', connectionId: 'c1', transport: 'ws', user: null, tokenId: null });
    // The base middleware puts the call's own fork in its place.
    const call = { ...ctx, em: services.orm.em.fork() };
    expect(call.em).toEqual({ fork: 1 });
    expect(forks()).toBe(1);
  });

  it('takes an em set on it', () => {
    const { services, forks } = fakeServices();
    const ctx = createContextInner({ services });
    const given = { given: true } as unknown as typeof ctx.em;
    ctx.em = given;
    expect(ctx.em).toBe(given);
    expect(forks()).toBe(0);
  });
});
