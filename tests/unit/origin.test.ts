/**
 * The same-origin check for mutations and WebSocket upgrades: scheme, host and port must all match
 * what the request reached (Fastify's protocol and host, which believe X-Forwarded-* only from
 * trusted proxies; the integration tour checks that part with a real server).
 */
import { describe, expect, it } from 'vitest';
import { isSameOriginRequest } from '../../server/auth/origin.js';

const self = { protocol: 'http', host: 'app.example.com:3000' };
const req = (headers: Record<string, string>, at: { protocol: string; host: string } = self) => ({ headers, ...at });

describe('isSameOriginRequest', () => {
  it('accepts the page\'s own origin, and programs that send no Origin', () => {
    expect(isSameOriginRequest(req({ origin: 'http://app.example.com:3000' }))).toBe(true);
    expect(isSameOriginRequest(req({ origin: 'http://APP.example.com:3000', 'sec-fetch-site': 'same-origin' }))).toBe(true);
    expect(isSameOriginRequest(req({}))).toBe(true);
    expect(isSameOriginRequest(req({ 'sec-fetch-site': 'none' }))).toBe(true);
  });

  it('compares the scheme: an http page is not the https dashboard, nor the reverse', () => {
    expect(isSameOriginRequest(req({ origin: 'https://app.example.com:3000' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: 'http://app.example.com' }, { protocol: 'https', host: 'app.example.com' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: 'https://app.example.com' }, { protocol: 'https', host: 'app.example.com' }))).toBe(true);
  });

  it('treats default ports as the same origin and other ports as another', () => {
    expect(isSameOriginRequest(req({ origin: 'https://app.example.com' }, { protocol: 'https', host: 'app.example.com:443' }))).toBe(true);
    expect(isSameOriginRequest(req({ origin: 'http://app.example.com:80' }, { protocol: 'http', host: 'app.example.com' }))).toBe(true);
    expect(isSameOriginRequest(req({ origin: 'http://app.example.com:3001' }))).toBe(false);
  });

  it('refuses other sites, null and malformed origins, and cross-site fetch metadata', () => {
    expect(isSameOriginRequest(req({ origin: 'http://evil.example:3000' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: 'null' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: '::not a url' }))).toBe(false);
    expect(isSameOriginRequest(req({ 'sec-fetch-site': 'cross-site' }))).toBe(false);
    expect(isSameOriginRequest(req({ 'sec-fetch-site': 'same-site', origin: 'http://app.example.com:3000' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: 'http://app.example.com:3000' }, { protocol: 'http', host: '' }))).toBe(false);
  });

  it('reads only the host it is given: an X-Forwarded-Host header alone changes nothing', () => {
    // Fastify puts a trusted proxy's X-Forwarded-Host into `host`; the raw header is never read here.
    expect(isSameOriginRequest(req({ origin: 'https://evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }))).toBe(false);
    expect(isSameOriginRequest(req({ origin: 'https://public.example.com', 'x-forwarded-host': 'public.example.com' }, { protocol: 'https', host: 'public.example.com' }))).toBe(true);
  });
});
