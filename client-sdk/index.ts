/**
 * The gateway's typed client for other TypeScript apps: `import { createGatewayClient } from
 * 'llm-gateway/client'`. One personal API token (`auth.tokens.create`) authenticates both
 * transports: `Authorization: Bearer` on HTTP, `connectionParams: { token }` on the WebSocket.
 * Subscriptions (and `presence.update`) go over the socket, which reconnects by itself; everything
 * else goes over batched HTTP. superjson on both, as the server uses.
 */
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient, type TRPCClientErrorLike } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../server/trpc/router.js';
import type { LiveEvent } from '../shared/events.js';

export type { AppRouter, LiveEvent };

/** Anything constructible like the browser's WebSocket (in Node 20: `import WebSocket from 'ws'`). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

export interface GatewayClientOptions {
  /** The gateway's base URL, e.g. `https://gateway.example.com` (the client adds `/trpc`). */
  url: string;
  /** A personal API token from `auth.tokens.create`. */
  token: string;
  /** WebSocket implementation; defaults to `globalThis.WebSocket` (Node 22+, browsers, Deno, Bun). */
  WebSocket?: WebSocketConstructor;
  /** Delay before reconnect attempt `n` (0-based); default grows from 0.5 s to 10 s. */
  retryDelayMs?: (attempt: number) => number;
  /** Open the socket only while a subscription is active (default false: open at once). */
  lazy?: boolean;
  /** fetch implementation for HTTP calls; defaults to the global one. */
  fetch?: typeof fetch;
  /** Called when a socket opens (the first time and after each reconnect). */
  onOpen?: () => void;
  /** Called when a socket closes (reconnection follows unless the client was closed). */
  onClose?: (cause?: { code?: number }) => void;
}

export interface SubscribeOrganizationOptions {
  /** Resume after this event id (persist `lastEventId()` and pass it back after a restart). */
  lastEventId?: string | null;
  /** Each event once, in order. `id` is set for stored events (all but `usage` and `presence`). */
  onEvent: (event: LiveEvent, id: string | undefined) => void;
  /** The subscription ended with an error (e.g. UNAUTHORIZED, NOT_FOUND); it is not retried. */
  onError?: (err: TRPCClientErrorLike<AppRouter>) => void;
  /** The server confirmed the subscription (also after every reconnect). */
  onStarted?: () => void;
  /** The server ended the stream (the caller was removed, or the organization deleted). */
  onComplete?: () => void;
}

export interface OrganizationSubscription {
  unsubscribe(): void;
  /** The id of the last stored event delivered to `onEvent` (or the one passed in). */
  lastEventId(): string | null;
}

export type GatewayClient = TRPCClient<AppRouter> & {
  /** Follows `live.organization`, resuming after reconnects from the last event delivered. */
  subscribeOrganization(orgId: string, opts: SubscribeOrganizationOptions): OrganizationSubscription;
  /** Closes the WebSocket (and ends its subscriptions). */
  close(): Promise<void>;
};

const defaultRetryDelay = (attempt: number) => Math.min(500 * 2 ** attempt, 10_000);

export function createGatewayClient(opts: GatewayClientOptions): GatewayClient {
  const base = opts.url.replace(/\/+$/, '');
  const WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WebSocketImpl) throw new Error("createGatewayClient: no global WebSocket here (Node 20): pass { WebSocket } from the 'ws' package");
  const token = opts.token;
  const ws = createWSClient({
    url: `${base.replace(/^http/, 'ws')}/trpc`,
    WebSocket: WebSocketImpl as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
    retryDelayMs: opts.retryDelayMs ?? defaultRetryDelay,
    lazy: opts.lazy ? { enabled: true, closeMs: 0 } : undefined,
    onOpen: opts.onOpen,
    onClose: opts.onClose,
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription' || op.path === 'presence.update',
        true: wsLink({ client: ws, transformer: superjson }),
        false: httpBatchLink({
          url: `${base}/trpc`,
          transformer: superjson,
          headers: () => ({ authorization: `Bearer ${token}` }),
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
        }),
      }),
    ],
  });

  function subscribeOrganization(orgId: string, sub: SubscribeOrganizationOptions): OrganizationSubscription {
    let last = sub.lastEventId ?? null;
    let current: { unsubscribe(): void } | null = null;
    let generation = 0;
    let closed = false;
    // After a reconnect wsLink re-subscribes by itself with the id of the last event the socket
    // carried, but an event without an id (presence, usage: they always follow a (re)start) clears
    // that id, and the re-subscription would start from "now", losing what happened while the
    // socket was down. So on every re-start this subscribes afresh from the last id delivered and
    // ignores the old subscription from then on. Anything at or before that id is dropped, so an
    // overlap is never delivered twice.
    const open = () => {
      const gen = ++generation;
      let starts = 0;
      current = trpc.live.organization.subscribe(
        { orgId, lastEventId: last },
        {
          onStarted: () => {
            if (gen !== generation) return;
            if (++starts === 1) return sub.onStarted?.();
            const previous = current;
            open();
            previous?.unsubscribe();
          },
          onData: (value) => {
            if (gen !== generation) return;
            const { id, event } = unwrap(value);
            if (id !== undefined) {
              if (last !== null && !isAfter(id, last)) return;
              last = id;
            }
            sub.onEvent(event, id);
          },
          onError: (err) => {
            if (gen === generation) sub.onError?.(err);
          },
          onComplete: () => {
            if (gen === generation && !closed) sub.onComplete?.();
          },
        },
      );
    };
    open();
    return {
      unsubscribe: () => {
        closed = true;
        generation++;
        current?.unsubscribe();
      },
      lastEventId: () => last,
    };
  }

  // The tRPC client is a proxy: every property is a router path, so add ours by wrapping it.
  const extra = { subscribeOrganization, close: () => ws.close() };
  return new Proxy(trpc, {
    get: (target, prop, receiver) => (prop in extra ? extra[prop as keyof typeof extra] : Reflect.get(target, prop, receiver)),
  }) as GatewayClient;
}

/** Stored events arrive as tracked `{id, data}`; ephemeral ones (usage, presence) arrive bare. */
function unwrap(value: unknown): { id: string | undefined; event: LiveEvent } {
  const v = value as { id?: unknown; data?: unknown; type?: unknown };
  if (typeof v.type === 'string') return { id: undefined, event: v as LiveEvent };
  return { id: String(v.id), event: v.data as LiveEvent };
}

/** Event ids are increasing integers (as decimal strings). */
function isAfter(id: string, than: string): boolean {
  if (/^\d+$/.test(id) && /^\d+$/.test(than)) return BigInt(id) > BigInt(than);
  return id !== than;
}
