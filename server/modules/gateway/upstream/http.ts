/**
 * The HTTP client to upstream providers: node:http(s) with keep-alive agents (no per-call TLS or TCP
 * setup), a deadline for the response headers and an idle deadline while the body streams.
 */
import http from 'node:http';
import https from 'node:https';
import { upstreamFailed, upstreamTimeout, GatewayError } from '../errors.js';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });

export interface UpstreamCall {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Yields the body as it arrives; throws GatewayError on idle timeout or a broken connection. */
  body(): AsyncGenerator<Buffer>;
  /** Reads the whole body (up to maxBytes). */
  text(maxBytes?: number): Promise<string>;
  abort(): void;
}

/** Upstream URLs parsed once: a handful of distinct ones serve every call. */
const parsedUrls = new Map<string, { isHttps: boolean; hostname: string; port: string; path: string; auth?: string }>();
function parseUrl(url: string) {
  let parsed = parsedUrls.get(url);
  if (!parsed) {
    const u = new URL(url);
    // IPv6 literals come bracketed from URL; the request options want them bare.
    parsed = { isHttps: u.protocol === 'https:', hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port, path: `${u.pathname}${u.search}`, ...(u.username ? { auth: `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` } : {}) };
    if (parsedUrls.size < 1000) parsedUrls.set(url, parsed);
  }
  return parsed;
}

export function postJson(url: string, headers: Record<string, string>, payload: string, timeoutMs: number, providerLabel: string): { response: Promise<UpstreamCall>; abort(): void } {
  const { isHttps, hostname, port, path, auth } = parseUrl(url);
  let settled = false;
  let aborted = false;
  const req = (isHttps ? https : http).request({
    hostname,
    port: port || undefined,
    path,
    auth,
    method: 'POST',
    agent: isHttps ? httpsAgent : httpAgent,
    headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), accept: 'application/json, text/event-stream' },
  });
  const response = new Promise<UpstreamCall>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(upstreamTimeout(timeoutMs));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(aborted ? new GatewayError(499, 'canceled', 'server_error', 'canceled') : upstreamFailed(`could not reach ${providerLabel}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'upstream_unreachable'));
    });
    req.on('response', (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      let failure: GatewayError | null = null;
      const idle = setTimeout(() => {
        failure = upstreamTimeout(timeoutMs);
        res.destroy();
      }, timeoutMs);
      res.on('close', () => clearTimeout(idle));
      res.on('end', () => clearTimeout(idle));
      async function* body(): AsyncGenerator<Buffer> {
        try {
          for await (const chunk of res) {
            idle.refresh();
            yield chunk as Buffer;
          }
        } catch (err) {
          if (failure) throw failure;
          if (err instanceof GatewayError) throw err;
          throw upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected');
        }
        if (failure) throw failure;
        if (!res.complete) throw upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected');
      }
      resolve({
        status: res.statusCode ?? 502,
        headers: res.headers,
        body,
        text(maxBytes = 20 * 1024 * 1024) {
          // Plain events rather than the async iterator: this is the hot path of non-streaming calls.
          return new Promise<string>((resolve, reject) => {
            const parts: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              idle.refresh();
              size += chunk.length;
              if (size > maxBytes) {
                failure = upstreamFailed(`${providerLabel} sent a response larger than ${maxBytes} bytes`);
                res.destroy();
                return;
              }
              parts.push(chunk);
            });
            res.on('end', () => (failure ? reject(failure) : resolve(parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8'))));
            res.on('error', () => reject(failure ?? upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected')));
            res.on('close', () => {
              if (!res.complete) reject(failure ?? upstreamFailed(`${providerLabel} closed the connection mid-response`, 'upstream_disconnected'));
            });
          });
        },
        abort() {
          aborted = true;
          res.destroy();
        },
      });
    });
  });
  req.end(payload);
  return {
    response,
    abort() {
      aborted = true;
      req.destroy();
    },
  };
}
