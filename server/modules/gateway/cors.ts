/**
 * CORS on /v1, so browser apps can call the gateway with a project key. A preflight (OPTIONS) is
 * answered without authentication (it carries no key): any origin may ask, since the project is not
 * known yet. The call itself is checked against its project's `allowedOrigins`: empty allows any
 * origin (`access-control-allow-origin: *`), otherwise only those origins exactly (echoed, with
 * `vary: origin`); another origin gets no allow-origin header (the browser blocks the answer) and
 * the call is refused with 403 before it reaches any upstream. The dashboard's /trpc is not under
 * /v1 and sends no CORS headers: it stays same-origin.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from './errors.js';
import type { GatewayRuntime } from './runtime.js';
import { authorizationOf } from './call.js';

/** Request headers browsers may send (the SDKs' own families are matched by prefix, see allowedHeaders). */
export const CORS_ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'x-api-key',
  'anthropic-version',
  'anthropic-beta',
  'anthropic-dangerous-direct-browser-access',
  'x-session-id',
  'x-request-id',
  'x-gateway-no-fallback',
  'openai-organization',
  'openai-project',
  'openai-beta',
  'idempotency-key',
];
/** Prefixes of headers the OpenAI and Anthropic SDKs add (x-stainless-os, x-stainless-retry-count, openai-…, anthropic-…). */
const ALLOWED_PREFIXES = ['x-stainless-', 'openai-', 'anthropic-', 'x-gateway-'];

/** Response headers scripts may read. */
export const CORS_EXPOSED_HEADERS = [
  'retry-after',
  'x-request-id',
  'request-id',
  'x-gateway-cache',
  'x-gateway-provider',
  'x-gateway-attempts',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
].join(', ');

const MAX_AGE_S = '600';

/** The allowed list plus what the preflight asks for among the SDK header families. */
function allowedHeaders(requested: string | undefined): string {
  const extra = (requested ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => /^[a-z0-9-]{1,64}$/.test(h) && !CORS_ALLOWED_HEADERS.includes(h) && ALLOWED_PREFIXES.some((p) => h.startsWith(p)));
  return [...CORS_ALLOWED_HEADERS, ...new Set(extra)].join(', ');
}

/** Headers set on the raw response, so hijacked (streamed) answers carry them too. */
function setRaw(reply: FastifyReply, headers: Record<string, string>) {
  for (const [name, value] of Object.entries(headers)) reply.raw.setHeader(name, value);
}

/** Whether `origin` may use a project with these allowed origins. */
export function originAllowed(allowed: readonly string[], origin: string): boolean {
  return allowed.length === 0 || allowed.includes(origin.toLowerCase());
}

export const originRefused = (origin: string) =>
  new GatewayError(403, `origin ${origin} is not allowed to call this gateway with this project's keys; add it to the project's allowed origins in the dashboard`, 'invalid_request_error', 'origin_not_allowed');

/** Registers the preflight route and the per-call origin check in the /v1 scope. */
export function registerCors(scope: FastifyInstance, runtime: GatewayRuntime): void {
  scope.route({
    method: 'OPTIONS',
    url: '/*',
    logLevel: 'warn',
    handler: (req, reply) => {
      const origin = req.headers.origin;
      if (typeof origin === 'string' && origin) {
        reply.headers({
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
          'access-control-allow-headers': allowedHeaders(req.headers['access-control-request-headers'] as string | undefined),
          'access-control-max-age': MAX_AGE_S,
        });
      }
      return reply.code(204).send();
    },
  });
  // Callback-style: a call without an Origin (servers, SDKs: nearly all) passes with no promise or extra tick.
  scope.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const origin = req.headers.origin;
    if (req.method === 'OPTIONS' || typeof origin !== 'string' || !origin) return done();
    checkOrigin(runtime, req, reply, origin).then(() => done(), done);
  });
}

/** A browser call's Origin against its project's allowed origins; sets the CORS response headers. */
async function checkOrigin(runtime: GatewayRuntime, req: FastifyRequest, reply: FastifyReply, origin: string): Promise<void> {
  const authorization = authorizationOf(req);
  let allowed: readonly string[] = [];
  try {
    // Cached per key: the handler's own authentication right after costs nothing more.
    allowed = (await runtime.authenticate(authorization)).project.allowedOrigins;
  } catch {
    // A bad key (or none): the handler answers 401, readable by the page.
  }
  if (!originAllowed(allowed, origin)) throw originRefused(origin);
  setRaw(reply, {
    'access-control-allow-origin': allowed.length === 0 ? '*' : origin,
    'access-control-expose-headers': CORS_EXPOSED_HEADERS,
    ...(allowed.length === 0 ? {} : { vary: 'origin' }),
  });
}
