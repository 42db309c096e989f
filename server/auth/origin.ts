/**
 * Cross-site request refusal for mutations and WebSocket upgrades. Browsers send Sec-Fetch-Site
 * and/or Origin; programs (no browser) send neither and authenticate with a bearer token.
 */
export function isSameOriginRequest(headers: Record<string, string | string[] | undefined>): boolean {
  const site = header(headers, 'sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = header(headers, 'origin');
  if (!origin) return true;
  const host = header(headers, 'x-forwarded-host') ?? header(headers, 'host');
  if (!host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
