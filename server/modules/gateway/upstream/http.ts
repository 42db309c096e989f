/**
 * The HTTP client to upstream providers: undici connection pools, one per origin, kept alive (no
 * per-call TLS or TCP setup). undici's client does much less work per call than node:http's
 * ClientRequest and agent, which matters on the gateway's hot path (see bench/README.md). A deadline
 * covers the response headers and, while the body streams, each gap between chunks.
 */
import { EventEmitter } from 'node:events';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { upstreamFailed, upstreamTimeout, GatewayError } from '../errors.js';
import { UpstreamAddressRefused, type UpstreamConnector, type UpstreamGuard } from './guard.js';

export interface UpstreamCall {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Yields the body as it arrives; throws GatewayError on idle timeout or a broken connection. */
  body(): AsyncGenerator<Buffer>;
  /** Reads the whole body (up to maxBytes). */
  text(maxBytes?: number): Promise<string>;
  abort(): void;
}

/**
 * The one place the undici pool options are built (every upstream connection is made with these).
 */
export function upstreamPoolOptions(connect?: UpstreamConnector): Pool.Options {
  // `connect`: the SSRF guard's connector (guard.ts) for origins a tenant chose; undici's own otherwise.
  return { connections: 1024, keepAliveTimeout: 10_000, pipelining: 1, ...(connect ? { connect } : {}) };
}

/**
 * This process's upstream connections: one undici Pool per origin, and upstream URLs split once
 * into their pool and request path. A member of the gateway (built by createServices), closed with it.
 */
export class UpstreamPools {
  private readonly routes = new Map<string, { pool: Pool; path: string; auth?: string }>();
  private readonly pools = new Map<string, Pool>();

  /** `guard` decides how each origin's connections are made (checked addresses for tenants' URLs). */
  constructor(private readonly guard?: UpstreamGuard) {}

  private routeOf(url: string) {
    let route = this.routes.get(url);
    if (!route) {
      const u = new URL(url);
      let pool = this.pools.get(u.origin);
      if (!pool) this.pools.set(u.origin, (pool = new Pool(u.origin, upstreamPoolOptions(this.guard?.connectFor(u.origin)))));
      route = { pool, path: `${u.pathname}${u.search}`, ...(u.username ? { auth: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` } : {}) };
      if (this.routes.size < 1000) this.routes.set(url, route);
    }
    return route;
  }

  postJson(url: string, headers: Record<string, string>, payload: string, timeoutMs: number, providerLabel: string): { response: Promise<UpstreamCall>; abort(): void } {
    return postJson(this.routeOf(url), headers, payload, timeoutMs, providerLabel);
  }

  /**
   * As postJson for an answer read whole (not streamed): `response` resolves once the body has
   * arrived, up to `maxBytes` (larger: an upstream failure). Through undici's dispatch API with a
   * handler that collects the body's buffers: no body stream, no async iteration, no request
   * wrapper per call (what pool.request adds; it showed in the gateway's profile, bench/README.md).
   */
  postJsonWhole(url: string, headers: Record<string, string>, payload: string, timeoutMs: number, providerLabel: string, maxBytes = WHOLE_BODY_MAX): { response: Promise<UpstreamCall>; abort(): void } {
    const { pool, path, auth } = this.routeOf(url);
    const handler = new WholeBody(providerLabel, timeoutMs, maxBytes);
    pool.dispatch({ path, method: 'POST', headers: requestHeaders(auth, headers), body: payload, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }, handler);
    return { response: handler.response, abort: () => handler.abort() };
  }

  /** Closes every upstream connection (shutdown). */
  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.routes.clear();
    await Promise.all(all.map((p) => p.close().catch(() => {})));
  }
}

function failure(err: unknown, providerLabel: string, timeoutMs: number, aborted: boolean, stage: 'connect' | 'body'): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof UpstreamAddressRefused) return upstreamFailed(`${providerLabel} was not called: ${err.message}`, 'upstream_address_refused');
  if (aborted) return new GatewayError(499, 'canceled', 'server_error', 'canceled');
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return upstreamTimeout(timeoutMs);
  if (stage === 'body') return upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected');
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? e.message ?? 'error';
  return upstreamFailed(`could not reach ${providerLabel}: ${code}`, 'upstream_unreachable');
}

/** The most an upstream answer read whole may be (either path). */
const WHOLE_BODY_MAX = 20 * 1024 * 1024;

function requestHeaders(auth: string | undefined, headers: Record<string, string>): Record<string, string> {
  return { accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}), ...headers, 'content-type': 'application/json' };
}

/** An upstream answer already read whole: what UpstreamCall's readers return from memory. */
class WholeCall implements UpstreamCall {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
    private readonly bodyText: string,
  ) {}

  async *body(): AsyncGenerator<Buffer> {
    yield Buffer.from(this.bodyText);
  }

  text(): Promise<string> {
    return Promise.resolve(this.bodyText);
  }

  abort(): void {}
}

/** undici dispatch handler of postJsonWhole: collects the answer and settles `response` once. */
class WholeBody implements Dispatcher.DispatchHandler {
  readonly response: Promise<UpstreamCall>;
  private resolve!: (call: UpstreamCall) => void;
  private reject!: (err: unknown) => void;
  private controller: Dispatcher.DispatchController | null = null;
  private aborted = false;
  private settled = false;
  private status = 0;
  private headers: Record<string, string | string[] | undefined> = {};
  private parts: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly label: string,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.response = new Promise<UpstreamCall>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Cancels the call (the client left): `response` rejects with a 499. */
  abort(): void {
    if (this.settled) return;
    this.aborted = true;
    this.controller?.abort(new undiciErrors.RequestAbortedError());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new undiciErrors.RequestAbortedError());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      controller.abort(upstreamFailed(`${this.label} sent a response larger than ${this.maxBytes} bytes`));
      return;
    }
    this.parts.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    const parts = this.parts;
    this.parts = [];
    this.resolve(new WholeCall(this.status, this.headers, parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8')));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.parts = [];
    this.reject(failure(err, this.label, this.timeoutMs, this.aborted, this.status === 0 ? 'connect' : 'body'));
  }
}

function postJson(
  { pool, path, auth }: { pool: Pool; path: string; auth?: string },
  headers: Record<string, string>,
  payload: string,
  timeoutMs: number,
  providerLabel: string,
): { response: Promise<UpstreamCall>; abort(): void } {
  // undici takes an EventEmitter as the abort signal ('abort' event): much cheaper to make per call
  // than an AbortController, which showed in the gateway's profile.
  const signal = new EventEmitter();
  let aborted = false;
  const response = pool
    .request({
      path,
      method: 'POST',
      headers: requestHeaders(auth, headers),
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
          async text(maxBytes = WHOLE_BODY_MAX) {
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
