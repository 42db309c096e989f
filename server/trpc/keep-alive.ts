/**
 * WebSocket keep-alive for every open socket from one timer, instead of tRPC's per-socket timers
 * (two closures, a timer re-armed on every message, per connection: a measurable share of an idle
 * subscriber's memory in bench/live-fanout). Same protocol as tRPC's `keepAlive` option: a socket
 * that has sent nothing for `pingMs` gets a `PING` text message (the tRPC client answers `PONG`);
 * one that then stays silent for `pongWaitMs` is terminated. Timing is to within `tickMs`.
 */
import type { WebSocket, WebSocketServer } from 'ws';

const lastHeard = Symbol('lastHeard');
const pingedAt = Symbol('pingedAt');
type Watched = WebSocket & { [lastHeard]?: number; [pingedAt]?: number };

/** One listener shared by every socket (no closure per socket). */
function heard(this: Watched) {
  this[lastHeard] = performance.now();
  this[pingedAt] = 0;
}

export interface KeepAlive {
  watch(socket: WebSocket): void;
  stop(): void;
}

export function startKeepAlive(wss: WebSocketServer, opts: { pingMs: number; pongWaitMs: number; tickMs?: number }): KeepAlive {
  const { pingMs, pongWaitMs } = opts;
  const timer = setInterval(() => {
    const now = performance.now();
    for (const client of wss.clients as Set<Watched>) {
      if (client[lastHeard] === undefined || client.readyState !== client.OPEN) continue;
      const pinged = client[pingedAt] ?? 0;
      if (pinged) {
        if (now - pinged >= pongWaitMs) client.terminate();
      } else if (now - client[lastHeard] >= pingMs) {
        client[pingedAt] = now;
        client.send('PING');
      }
    }
  }, opts.tickMs ?? 1_000);
  timer.unref();
  return {
    watch(socket) {
      const s = socket as Watched;
      s[lastHeard] = performance.now();
      s[pingedAt] = 0;
      s.on('message', heard);
    },
    stop: () => clearInterval(timer),
  };
}
