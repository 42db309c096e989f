/**
 * The one tRPC client of this tab: queries and mutations over HTTP batching at /trpc, subscriptions
 * and presence heartbeats over a single WebSocket at the same origin. Cookies authenticate both.
 */
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, TRPCClientError, type TRPCLink } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { observable } from '@trpc/server/observable';
import superjson from 'superjson';
import type { AppRouter } from '../../server/trpc/router.js';

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;

function webSocketUrl(): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/trpc`;
}

/**
 * Lazy: the socket opens with the first subscription, i.e. after sign-in, so the upgrade request
 * carries the session cookie. Signing out reloads the page, which drops the socket.
 */
export const wsClient = createWSClient({
  url: webSocketUrl,
  lazy: { enabled: true, closeMs: 10_000 },
  retryDelayMs: (attempt) => Math.min(500 * 2 ** attempt, 10_000),
});

let unauthorizedHandler: (() => void) | null = null;

/** Called when any call outside auth.* finds the session gone (expired, signed out elsewhere). */
export function onUnauthorized(handler: () => void) {
  unauthorizedHandler = handler;
}

const sessionWatchLink: TRPCLink<AppRouter> = () => ({ op, next }) =>
  observable((observer) =>
    next(op).subscribe({
      next: (value) => observer.next(value),
      error: (err) => {
        if (err.data?.code === 'UNAUTHORIZED' && !op.path.startsWith('auth.')) unauthorizedHandler?.();
        observer.error(err);
      },
      complete: () => observer.complete(),
    }),
  );

export const api = createTRPCClient<AppRouter>({
  links: [
    sessionWatchLink,
    splitLink({
      condition: (op) => op.type === 'subscription' || op.path === 'presence.update',
      true: wsLink({ client: wsClient, transformer: superjson }),
      false: httpBatchLink({ url: '/trpc', transformer: superjson }),
    }),
  ],
});

export type ApiError = TRPCClientError<AppRouter>;

export function isApiError(err: unknown): err is ApiError {
  return err instanceof TRPCClientError;
}

export function errorCode(err: unknown): string | undefined {
  return isApiError(err) ? err.data?.code : undefined;
}

/** A message a person can act on: the server's own words, or a plain fallback. */
export function errorMessage(err: unknown): string {
  if (isApiError(err)) {
    if (err.data?.zodIssues?.length) return err.data.zodIssues.map((i) => i.message).join('; ');
    if (/fetch|network/i.test(err.message) && !err.data) return 'Cannot reach the server. Check your connection and try again.';
    return capitalize(err.message);
  }
  if (err instanceof Error) return capitalize(err.message);
  return 'Something went wrong.';
}

/** Zod issues from the server, keyed by the first path segment (the form field). */
export function fieldErrorsOf(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isApiError(err)) return out;
  for (const issue of err.data?.zodIssues ?? []) {
    const key = issue.path[0] ?? '';
    if (!out[key]) out[key] = capitalize(issue.message);
  }
  return out;
}

export function capitalize(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}
