/**
 * Cross-site request refusal for mutations and WebSocket upgrades. Browsers send Sec-Fetch-Site
 * and/or Origin; programs (no browser) send neither and authenticate with a bearer token.
 *
 * "Same origin" is scheme, host and port together: a page on http://app.example.com is not the
 * https://app.example.com dashboard. Our own origin is what the request reached: Fastify's
 * `protocol` and `host`, which take X-Forwarded-Proto / X-Forwarded-Host only from proxies that
 * TRUST_PROXY trusts (anyone else could claim any host in those headers).
 */

/** The parts of a Fastify request the check reads. */
export interface OriginCheckedRequest {
  headers: Record<string, string | string[] | undefined>;
  /** `http` or `https`, as Fastify derives it (X-Forwarded-Proto only from a trusted proxy). */
  protocol: string;
  /** host[:port], as Fastify derives it (X-Forwarded-Host only from a trusted proxy). */
  host: string;
}

export function isSameOriginRequest(req: OriginCheckedRequest): boolean {
  const site = header(req.headers, 'sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = header(req.headers, 'origin');
  if (!origin) return true;
  if (!req.host || (req.protocol !== 'http' && req.protocol !== 'https')) return false;
  try {
    // URL.origin normalizes case and default ports (https://x:443 is https://x).
    return new URL(origin).origin === new URL(`${req.protocol}://${req.host}`).origin;
  } catch {
    // `Origin: null` (sandboxed frames, file: pages) and malformed values are not us.
    return false;
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
