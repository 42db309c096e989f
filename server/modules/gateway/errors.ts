/** Errors in OpenAI's JSON shape: {"error": {"message", "type", "param", "code"}}. */
import type { DomainError, DomainErrorKind } from '../../errors.js';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'insufficient_quota' | 'rate_limit_error' | 'upstream_error' | 'timeout_error' | 'server_error';

export class GatewayError extends Error {
  /** The upstream's HTTP status when this error is an upstream's answer (fromUpstreamStatus); null otherwise. */
  upstreamStatus: number | null = null;

  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON() {
    return errorBody(this.message, this.type, this.code);
  }
}

export function errorBody(message: string, type: ErrorType, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

export const badRequest = (message: string, code: string | null = null) => new GatewayError(400, message, 'invalid_request_error', code);
/** An unknown model anywhere is 404 `model_not_found`, as OpenAI answers. */
export const modelNotFound = (message: string) => new GatewayError(404, message, 'invalid_request_error', 'model_not_found');
export const unauthorized = (message = 'invalid or revoked API key; create one under API keys in the dashboard') =>
  new GatewayError(401, message, 'authentication_error', 'invalid_api_key');
export const noCredits = () =>
  new GatewayError(402, 'your organization has no credits left; buy credits or enable auto top-up in Billing (or add your own provider key)', 'insufficient_quota', 'insufficient_credits');
export const rateLimited = (limit: number, retryAfterS: number) =>
  new GatewayError(429, `rate limit of ${limit} requests per minute reached for this API key; retry in ${retryAfterS} s`, 'rate_limit_error', 'rate_limit_exceeded', {
    'retry-after': String(retryAfterS),
    'x-ratelimit-limit-requests': String(limit),
    'x-ratelimit-remaining-requests': '0',
  });
export const upstreamFailed = (message: string, code = 'upstream_error') => new GatewayError(502, message, 'upstream_error', code);
export const upstreamTimeout = (ms: number) => new GatewayError(504, `the upstream provider did not answer within ${ms} ms`, 'timeout_error', 'upstream_timeout');

/** Upstream headers the client should see on our error: when to retry (seconds or an HTTP date, as sent). */
function passedOnHeaders(headers: Record<string, string | string[] | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = headers?.['retry-after'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  // Seconds, or an HTTP date: anything else (or an absurd length) is not passed on.
  if (typeof value === 'string' && value.length <= 64 && (/^\d{1,7}$/.test(value.trim()) || !Number.isNaN(Date.parse(value)))) out['retry-after'] = value.trim();
  return out;
}

/**
 * Maps an upstream error answer (before any byte reached the client) to ours; the upstream's
 * `retry-after` (on 429 and 5xx answers) is passed on to the client.
 */
export function fromUpstreamStatus(provider: string, status: number, bodyText: string, upstreamHeaders?: Record<string, string | string[] | undefined>): GatewayError {
  const err = upstreamStatusError(provider, status, bodyText, upstreamHeaders);
  err.upstreamStatus = status;
  return err;
}

function upstreamStatusError(provider: string, status: number, bodyText: string, upstreamHeaders?: Record<string, string | string[] | undefined>): GatewayError {
  const headers = passedOnHeaders(upstreamHeaders);
  let detail = bodyText.slice(0, 300);
  try {
    const parsed = JSON.parse(bodyText) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    if (typeof m === 'string') detail = m.slice(0, 500);
  } catch {
    // not JSON: keep the text
  }
  if ([400, 404, 413, 422].includes(status)) return new GatewayError(400, `${provider} rejected the request: ${detail}`, 'invalid_request_error', 'upstream_bad_request');
  if (status === 401 || status === 403) return upstreamFailed(`${provider} rejected the provider credentials (HTTP ${status}): ${detail}`, 'upstream_auth_failed');
  if (status === 429) return new GatewayError(429, `${provider} is rate limiting: ${detail}`, 'rate_limit_error', 'upstream_rate_limited', headers);
  return new GatewayError(502, `${provider} failed (HTTP ${status}): ${detail}`, 'upstream_error', 'upstream_error', status >= 500 ? headers : {});
}

const DOMAIN_STATUS: Record<DomainErrorKind, { status: number; type: ErrorType }> = {
  invalid: { status: 400, type: 'invalid_request_error' },
  precondition: { status: 400, type: 'invalid_request_error' },
  conflict: { status: 409, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  forbidden: { status: 403, type: 'invalid_request_error' },
  unauthorized: { status: 401, type: 'authentication_error' },
  too_many_requests: { status: 429, type: 'rate_limit_error' },
};

/** A domain error (server/errors.ts) in the gateway's OpenAI error shape. */
export function fromDomainError(err: DomainError): GatewayError {
  const { status, type } = DOMAIN_STATUS[err.kind];
  return new GatewayError(status, err.message, type, err.kind);
}
