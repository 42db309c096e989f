/** Typed tRPC clients as a browser (cookie jar, same-origin headers) or a program (bearer token) would use them. */
import { createTRPCClient, createWSClient, httpBatchLink, httpLink, splitLink, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { AppRouter } from '../../server/trpc/router.js';

export type Client = TRPCClient<AppRouter>;

export interface BrowserLike {
  client: Client;
  cookies: Map<string, string>;
  cookieHeader(): string;
}

export function browserClient(baseUrl: string, opts: { origin?: string; batch?: boolean } = {}): BrowserLike {
  const cookies = new Map<string, string>();
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const fetchWithCookies: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    if (cookies.size) headers.set('cookie', cookieHeader());
    headers.set('origin', opts.origin ?? baseUrl);
    headers.set('sec-fetch-site', opts.origin && opts.origin !== baseUrl ? 'cross-site' : 'same-origin');
    const res = await fetch(input, { ...init, headers });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0/i.test(line) || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return res;
  };
  const link = (opts.batch ?? false)
    ? httpBatchLink({ url: `${baseUrl}/trpc`, transformer: superjson, fetch: fetchWithCookies })
    : httpLink({ url: `${baseUrl}/trpc`, transformer: superjson, fetch: fetchWithCookies });
  return { client: createTRPCClient<AppRouter>({ links: [link] }), cookies, cookieHeader };
}

export function tokenClient(baseUrl: string, token: string): Client {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${baseUrl}/trpc`, transformer: superjson, headers: () => ({ authorization: `Bearer ${token}` }) })],
  });
}

/** A WebSocket client; authenticates with the session cookie or a token in connectionParams. */
export function wsClient(baseUrl: string, auth: { cookie?: string; token?: string }) {
  const wsUrl = baseUrl.replace(/^http/, 'ws') + '/trpc';
  const cookie = auth.cookie;
  class AuthedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { ...(cookie ? { cookie } : {}), origin: baseUrl } });
    }
  }
  const ws = createWSClient({
    url: wsUrl,
    WebSocket: AuthedWebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: auth.token ? { token: auth.token } : undefined,
    retryDelayMs: () => 200,
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription' || op.path === 'presence.update',
        true: wsLink({ client: ws, transformer: superjson }),
        false: httpLink({ url: `${baseUrl}/trpc`, transformer: superjson, headers: () => ({ ...(cookie ? { cookie } : {}), ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}), origin: baseUrl }) }),
      }),
    ],
  });
  return { client, ws, close: () => ws.close() };
}

let counter = 0;
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}@example.com`;
}

export async function signUp(baseUrl: string, name = 'Test User', email = uniqueEmail()) {
  const browser = browserClient(baseUrl);
  const { user } = await browser.client.auth.signUp.mutate({ email, password: 'correct horse battery', name });
  return { ...browser, user, email };
}
