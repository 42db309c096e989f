/**
 * Helpers for the live (WebSocket) tests: a tRPC WebSocket client that records how its socket
 * closes, a subscription recorder with waits and bounded "nothing arrived" checks, and a way to
 * add members to an organization through the real invitation flow.
 */
import { createTRPCClient, createWSClient, httpLink, splitLink, wsLink, TRPCClientError, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { AppRouter } from '../../server/trpc/router.js';
import type { LiveEvent } from '../../shared/events.js';
import type { Role } from '../../shared/permissions.js';
import { signUp, type BrowserLike } from './client.js';

export type Received = { id: string | undefined; event: LiveEvent };

export interface LiveConnection {
  client: TRPCClient<AppRouter>;
  /** Close frames this client saw, in order (code 4001 = the server ended the session). */
  closes: { code: number; reason: string }[];
  /** How many times a socket opened (reconnects count). */
  opens(): number;
  subscribe(orgId: string, lastEventId?: string | null): LiveSubscription;
  close(): Promise<void>;
}

/**
 * A WebSocket client as a browser (cookie + same Origin) or a program (token in connectionParams)
 * uses it: subscriptions and presence.update over the socket, everything else over HTTP.
 */
export function liveConnection(baseUrl: string, auth: { cookie?: string; token?: string } = {}): LiveConnection {
  const wsUrl = baseUrl.replace(/^http/, 'ws') + '/trpc';
  const { cookie, token } = auth;
  const closes: { code: number; reason: string }[] = [];
  let opened = 0;
  class AuthedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { ...(cookie ? { cookie } : {}), origin: baseUrl } });
    }
  }
  const ws = createWSClient({
    url: wsUrl,
    WebSocket: AuthedWebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: token ? { token } : undefined,
    retryDelayMs: () => 100,
    onOpen: () => void opened++,
    onClose: (cause) => void closes.push({ code: cause?.code ?? 0, reason: String((cause as { reason?: unknown } | undefined)?.reason ?? '') }),
  });
  const headers = () => ({ ...(cookie ? { cookie } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), origin: baseUrl });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription' || op.path === 'presence.update',
        true: wsLink({ client: ws, transformer: superjson }),
        false: httpLink({ url: `${baseUrl}/trpc`, transformer: superjson, headers }),
      }),
    ],
  });
  return {
    client,
    closes,
    opens: () => opened,
    subscribe: (orgId, lastEventId) => new LiveSubscription(client, orgId, lastEventId),
    close: () => ws.close(),
  };
}

function normalize(value: unknown): Received {
  const v = value as { id?: unknown; data?: unknown; type?: unknown };
  // tracked(id, data) arrives as {id, data}; untracked events (presence) arrive bare.
  if (typeof v.type === 'string') return { id: undefined, event: v as LiveEvent };
  return { id: String(v.id), event: v.data as LiveEvent };
}

export class LiveSubscription {
  readonly received: Received[] = [];
  readonly errors: TRPCClientError<AppRouter>[] = [];
  completed = false;
  started = false;
  private readonly waiters = new Set<() => void>();
  private readonly handle: { unsubscribe(): void };

  constructor(client: TRPCClient<AppRouter>, orgId: string, lastEventId?: string | null) {
    this.handle = client.live.organization.subscribe(
      { orgId, ...(lastEventId !== undefined ? { lastEventId } : {}) },
      {
        onStarted: () => {
          this.started = true;
          this.notify();
        },
        onData: (value) => {
          this.received.push(normalize(value));
          this.notify();
        },
        onError: (err) => {
          this.errors.push(err as TRPCClientError<AppRouter>);
          this.notify();
        },
        onComplete: () => {
          this.completed = true;
          this.notify();
        },
      },
    );
  }

  private notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `check` returns a value (checked now and after every callback), or fails after `timeoutMs`. */
  until<T>(what: string, check: () => T | undefined | null | false, timeoutMs = 5_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined && value !== null && value !== false) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(this.received.map((r) => [r.id, r.event.type]))}; errors: ${this.errors.map((e) => e.data?.code ?? e.message).join(', ')}; completed: ${this.completed}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }

  /** The first received event of `type` matching `match`. */
  event<T extends LiveEvent['type']>(type: T, match: (e: Extract<LiveEvent, { type: T }>) => boolean = () => true, timeoutMs?: number) {
    return this.until(
      `a ${type} event`,
      () => this.received.find((r) => r.event.type === type && match(r.event as Extract<LiveEvent, { type: T }>)) as (Received & { event: Extract<LiveEvent, { type: T }> }) | undefined,
      timeoutMs,
    );
  }

  /** The first presence event (after `fromIndex`) whose viewers satisfy `match`. */
  presence(match: (viewers: { userId: string; name: string; page: string }[]) => boolean, timeoutMs?: number, fromIndex = 0) {
    return this.until(
      'a matching presence event',
      () => this.received.slice(fromIndex).find((r) => r.event.type === 'presence' && match(r.event.viewers)),
      timeoutMs,
    );
  }

  error(timeoutMs?: number) {
    return this.until('an error', () => this.errors[0], timeoutMs);
  }

  complete(timeoutMs?: number) {
    return this.until('completion', () => this.completed, timeoutMs);
  }

  /** Events with ids (stored, replayable), in arrival order. */
  tracked(): Received[] {
    return this.received.filter((r) => r.id !== undefined);
  }

  unsubscribe() {
    this.handle.unsubscribe();
  }
}

export function errorCode(err: unknown): string | undefined {
  return err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
}

export async function sleep(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it holds, or fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'a condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Signs up a new user and brings them into `orgId` with `role` through a real invitation. */
export async function addMember(baseUrl: string, inviter: BrowserLike, orgId: string, name: string, role: Exclude<Role, 'owner'> = 'developer') {
  const member = await signUp(baseUrl, name);
  const { inviteUrl } = await inviter.client.team.invite.mutate({ orgId, email: member.email, role });
  const token = inviteUrl.slice(inviteUrl.lastIndexOf('/') + 1);
  await member.client.team.acceptInvitation.mutate({ token });
  return member;
}
