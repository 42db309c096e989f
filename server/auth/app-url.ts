/**
 * APP_URL is the one public address of the dashboard: every link in an email (invitations,
 * password reset, email verification) and every redirect back from elsewhere (Stripe Checkout)
 * uses it, never the Host of the request (anyone can send any Host header; a link built from it
 * would send a reset token to the sender's site).
 *
 * Two helpers around it:
 * - `AppUrlWatch` logs one warning, at the first dashboard request that arrives on another
 *   origin than APP_URL's: the operator learns that links will point elsewhere than where people
 *   actually open the dashboard (APP_URL unset or wrong behind a proxy).
 * - `returnUrlBase` gives the base URL to send a browser back to after an external page (checkout):
 *   the origin the request came from when it is APP_URL's or listed in APP_ALLOWED_ORIGINS,
 *   else APP_URL. See docs/decisions.md "APP_URL".
 */

interface Log { warn(o: unknown, m?: string): void }

/** `https://Host:443/x` -> `https://host`; null for anything that is not an http(s) URL. */
export function originOf(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/** The paths of the dashboard (its pages and its API); the gateway's /v1 and operators' endpoints are not. */
export function isDashboardPath(url: string): boolean {
  return !/^\/(v1|healthz|metrics|api)(\/|\?|$)/.test(url);
}

export class AppUrlWatch {
  private warned = false;

  constructor(
    private readonly appUrl: () => string,
    private readonly allowedOrigins: readonly string[],
    private readonly log: Log,
  ) {}

  /** Called for each dashboard request with the origin it arrived on (`protocol://host`). */
  observe(requestOrigin: string | null): void {
    if (this.warned || !requestOrigin) return;
    const origin = originOf(requestOrigin);
    const appOrigin = originOf(this.appUrl());
    if (!origin || origin === appOrigin) return;
    this.warned = true;
    this.log.warn(
      { requestOrigin: origin, appUrl: this.appUrl(), allowedOrigins: this.allowedOrigins },
      `a request arrived on ${origin}, but APP_URL is ${this.appUrl()}: links in emails (invitations, password resets, email verification) and redirects point to APP_URL` +
        (this.allowedOrigins.includes(origin) ? ' (checkout returns to this origin: it is in APP_ALLOWED_ORIGINS)' : '; set APP_URL to the address people open, or add this origin to APP_ALLOWED_ORIGINS') +
        ' (logged once)',
    );
  }
}

/**
 * Where to send a browser back to after an external page (Stripe Checkout success/cancel URLs):
 * the origin the request came from if it is APP_URL's or in `allowedOrigins`, else APP_URL.
 * Usage in a router: `returnUrlBase(ctx.services.appUrl, ctx.services.config.allowedOrigins, ctx.requestOrigin)`.
 */
export function returnUrlBase(appUrl: string, allowedOrigins: readonly string[], requestOrigin: string | null): string {
  const origin = originOf(requestOrigin);
  if (origin && (origin === originOf(appUrl) || allowedOrigins.includes(origin))) return origin;
  return appUrl.replace(/\/+$/, '');
}
