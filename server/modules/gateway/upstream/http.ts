/**
 * The HTTP client to upstream providers: undici connection pools, one per origin, kept alive (no
 * per-call TLS or TCP setup). undici's client does much less work per call than node:http's
 * ClientRequest and agent, which matters on the gateway's hot path (see bench/README.md). A deadline
 * covers the response headers and, while the body streams, each gap between chunks.
 */
import { EventEmitter } from 'node:events';
import { Pool, errors as undiciErrors } from 'undici';
import { upstreamFailed, upstreamTimeout, GatewayError } from '../errors.js';

export interface UpstreamCall {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Yields the body as it arrives; throws GatewayError on idle timeout or a broken connection. */
  body(): AsyncGenerator<Buffer>;
  /** Reads the whole body (up to maxBytes). */
  text(maxBytes?: number): Promise<string>;
  abort(): void;
}

/** Upstream URLs split once into their pool (per origin) and request path. */
const routes = new Map<string, { pool: Pool; path: string; auth?: string }>();
const pools = new Map<string, Pool>();

function routeOf(url: string) {
  let route = routes.get(url);
  if (!route) {
    const u = new URL(url);
    let pool = pools.get(u.origin);
    if (!pool) pools.set(u.origin, (pool = new Pool(u.origin, { connections: 1024, keepAliveTimeout: 10_000, pipelining: 1 })));
    route = { pool, path: `${u.pathname}${u.search}`, ...(u.username ? { auth: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` } : {}) };
    if (routes.size < 1000) routes.set(url, route);
  }
  return route;
}

/** Closes every upstream connection (tests and shutdown). */
export async function closeUpstreamPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  routes.clear();
  await Promise.all(all.map((p) => p.close().catch(() => {})));
}

function failure(err: unknown, providerLabel: string, timeoutMs: number, aborted: boolean, stage: 'connect' | 'body'): GatewayError {
  if (err instanceof GatewayError) return err;
  if (aborted) return new GatewayError(499, 'canceled', 'server_error', 'canceled');
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return upstreamTimeout(timeoutMs);
  if (stage === 'body') return upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected');
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? e.message ?? 'error';
  return upstreamFailed(`could not reach ${providerLabel}: ${code}`, 'upstream_unreachable');
}

export function postJson(url: string, headers: Record<string, string>, payload: string, timeoutMs: number, providerLabel: string): { response: Promise<UpstreamCall>; abort(): void } {
  const { pool, path, auth } = routeOf(url);
  // undici takes an EventEmitter as the abort signal ('abort' event): much cheaper to make per call
  // than an AbortController, which showed in the gateway's profile.
  const signal = new EventEmitter();
  let aborted = false;
  const response = pool
    .request({
      path,
      method: 'POST',
      headers: { accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}), ...headers, 'content-type': 'application/json' },
      body: payload,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    .then(
      (res): UpstreamCall => {
        const stream = res.body;
        async function* body(): AsyncGenerator<Buffer> {
          try {
            for await (const chunk of stream) yield chunk as Buffer;
          } catch (err) {
            throw failure(err, providerLabel, timeoutMs, aborted, 'body');
          }
        }
        return {
          status: res.statusCode,
          headers: res.headers,
          body,
          async text(maxBytes = 20 * 1024 * 1024) {
            const parts: Buffer[] = [];
            let size = 0;
            try {
              for await (const chunk of stream) {
                size += (chunk as Buffer).length;
                if (size > maxBytes) {
                  stream.destroy();
                  throw upstreamFailed(`${providerLabel} sent a response larger than ${maxBytes} bytes`);
                }
                parts.push(chunk as Buffer);
              }
            } catch (err) {
              throw failure(err, providerLabel, timeoutMs, aborted, 'body');
            }
            return parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
          },
          abort() {
            aborted = true;
            stream.destroy();
          },
        };
      },
      (err: unknown) => {
        throw failure(err, providerLabel, timeoutMs, aborted, 'connect');
      },
    );
  return {
    response,
    abort() {
      aborted = true;
      signal.emit('abort');
    },
  };
}
