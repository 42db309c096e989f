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
import { resumingLiveSubscription } from '../shared/live-resume.js';

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
    let closed = false;
    const subscription = resumingLiveSubscription(
      (lastEventId, callbacks) => trpc.live.organization.subscribe({ orgId, lastEventId }, callbacks),
      sub.lastEventId ?? null,
      {
        onEvent: sub.onEvent,
        onStarted: sub.onStarted,
        onError: (err) => sub.onError?.(err as TRPCClientErrorLike<AppRouter>),
        onComplete: () => {
          if (!closed) sub.onComplete?.();
        },
      },
    );
    return {
      unsubscribe: () => {
        closed = true;
        subscription.unsubscribe();
      },
      lastEventId: subscription.lastEventId,
    };
  }

  // The tRPC client is a proxy: every property is a router path, so add ours by wrapping it.
  const extra = { subscribeOrganization, close: () => ws.close() };
  return new Proxy(trpc, {
    get: (target, prop, receiver) => (prop in extra ? extra[prop as keyof typeof extra] : Reflect.get(target, prop, receiver)),
  }) as GatewayClient;
}
