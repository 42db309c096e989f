/**
 * The subscriber side of the live fan-out benchmark, in its own process so that client CPU does
 * not count against the server. Driven by run.ts over IPC: opens one real WebSocket (tRPC's
 * createWSClient + wsLink, as the SPA and programs use it) per subscriber, subscribes to
 * live.organization, and timestamps every benchmark event on arrival with the machine's
 * monotonic clock (process.hrtime, CLOCK_MONOTONIC: the same clock in every process).
 */
import { createTRPCClient, createWSClient, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { AppRouter } from '../../server/trpc/router.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export interface Subscriber {
  cookie: string;
  orgId: string;
}

export type ToClients =
  | { type: 'connect'; url: string; subscribers: Subscriber[]; concurrency: number }
  | { type: 'disconnect' }
  | { type: 'results' }
  | { type: 'exit' };

export type FromClients =
  | { type: 'hello' }
  | { type: 'connected'; count: number; ms: number; errors: string[] }
  | { type: 'disconnected' }
  | { type: 'results'; seqs: number[]; receivedUs: number[]; errors: string[]; otherEvents: number; cpuUserMs: number; cpuSystemMs: number };

interface Open {
  ws: ReturnType<typeof createWSClient>;
  unsubscribe(): void;
}

const open: Open[] = [];
let seqs: number[] = [];
let receivedUs: number[] = [];
let otherEvents = 0;
const errors: string[] = [];

function send(message: FromClients) {
  process.send!(message);
}

function note(error: string) {
  if (errors.length < 20) errors.push(error);
}

function subscribe(url: string, sub: Subscriber): Promise<void> {
  return new Promise((resolve) => {
    const origin = url;
    class CookieWebSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols, { headers: { cookie: sub.cookie, origin } });
      }
    }
    const ws = createWSClient({ url: url.replace(/^http/, 'ws') + '/trpc', WebSocket: CookieWebSocket as unknown as typeof globalThis.WebSocket });
    const client: TRPCClient<AppRouter> = createTRPCClient<AppRouter>({ links: [wsLink({ client: ws, transformer: superjson })] });
    let ready = false;
    const subscription = client.live.organization.subscribe(
      { orgId: sub.orgId },
      {
        onData(value) {
          const at = process.hrtime.bigint();
          if (!ready) {
            ready = true; // the first event (presence) says the stream is attached
            resolve();
          }
          // tracked(id, data) arrives as {id, data}; untracked events arrive bare.
          const v = value as { type?: string; name?: string; data?: { type?: string; name?: string } };
          const event = typeof v.type === 'string' ? v : v.data;
          const name = event?.type === 'project.updated' ? event.name : undefined;
          if (name?.startsWith('bench ')) {
            seqs.push(Number(name.slice('bench '.length)));
            receivedUs.push(Number(at / 1000n));
          } else {
            otherEvents++;
          }
        },
        onError(err) {
          note(String(err.message));
          if (!ready) {
            ready = true;
            resolve();
          }
        },
      },
    );
    open.push({ ws, unsubscribe: () => subscription.unsubscribe() });
  });
}

async function connectAll(url: string, subscribers: Subscriber[], concurrency: number) {
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < subscribers.length) await subscribe(url, subscribers[next++]!);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  send({ type: 'connected', count: open.length, ms: Date.now() - started, errors: [...errors] });
}

async function disconnectAll() {
  const all = open.splice(0);
  for (const o of all) o.unsubscribe();
  await Promise.all(all.map((o) => o.ws.close()));
  seqs = [];
  receivedUs = [];
  otherEvents = 0;
  errors.length = 0;
  send({ type: 'disconnected' });
}

process.on('message', (message: ToClients) => {
  switch (message.type) {
    case 'connect':
      void connectAll(message.url, message.subscribers, message.concurrency);
      break;
    case 'disconnect':
      void disconnectAll();
      break;
    case 'results': {
      // Hands over what arrived since the last call, and starts afresh.
      const cpu = process.cpuUsage();
      send({ type: 'results', seqs, receivedUs, errors: [...errors], otherEvents, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000 });
      seqs = [];
      receivedUs = [];
      otherEvents = 0;
      // Collect the handed-over arrays now, not as a pause in the middle of the next phase.
      setImmediate(gc);
      break;
    }
    case 'exit':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'hello' });
