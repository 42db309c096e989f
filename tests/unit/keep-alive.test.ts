/**
 * The shared WebSocket keep-alive (server/trpc/keep-alive.ts) speaks tRPC's protocol: PING after
 * `pingMs` of silence, terminate after `pongWaitMs` more, and any message (a PONG included)
 * counts as a sign of life. Real sockets between a ws server and client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, WebSocket } from 'ws';
import { startKeepAlive, type KeepAlive } from '../../server/trpc/keep-alive.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(opts: { pingMs: number; pongWaitMs: number }) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const keepAlive: KeepAlive = startKeepAlive(wss, { ...opts, tickMs: 10 });
  wss.on('connection', (socket) => keepAlive.watch(socket));
  const address = wss.address() as { port: number };
  const client = new WebSocket(`ws://127.0.0.1:${address.port}`);
  const received: string[] = [];
  client.on('message', (m) => received.push(String(m)));
  const closed = new Promise<number>((r) => client.once('close', (code) => r(code)));
  await new Promise<void>((r) => client.once('open', () => r()));
  cleanups.push(async () => {
    keepAlive.stop();
    client.terminate();
    await new Promise((r) => wss.close(r));
  });
  return { client, received, closed };
}

describe('WebSocket keep-alive', () => {
  it('pings a silent socket and keeps it while it answers PONG', async () => {
    const { client, received, closed } = await pair({ pingMs: 60, pongWaitMs: 200 });
    client.on('message', (m) => String(m) === 'PING' && client.send('PONG'));
    const deadline = Date.now() + 5_000;
    while (received.filter((m) => m === 'PING').length < 3) {
      if (Date.now() > deadline) throw new Error(`expected 3 PINGs, got ${received.join(',')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(client.readyState).toBe(WebSocket.OPEN);
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 50))]);
    expect(outcome).toBe('open');
  });

  it('terminates a socket that does not answer its PING', async () => {
    const started = Date.now();
    const { received, closed } = await pair({ pingMs: 50, pongWaitMs: 80 });
    const code = await closed;
    expect(received).toContain('PING');
    expect(code).toBe(1006); // terminated, no close frame
    expect(Date.now() - started).toBeGreaterThanOrEqual(120);
  });
});
