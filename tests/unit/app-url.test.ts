/** Links and redirects follow APP_URL: one warning for a dashboard reached on another origin; checkout returns only to allowed origins. */
import { describe, expect, it } from 'vitest';
import { AppUrlWatch, isDashboardPath, originOf, returnUrlBase } from '../../server/auth/app-url.js';
import { loadConfig } from '../../server/config.js';

describe('AppUrlWatch', () => {
  it('warns once, at the first request on another origin, naming both', () => {
    const warnings: { o: unknown; m?: string }[] = [];
    const watch = new AppUrlWatch(() => 'https://app.example.com', [], { warn: (o, m) => void warnings.push({ o, m }) });
    watch.observe('https://app.example.com');
    watch.observe('https://APP.example.com:443');
    expect(warnings).toEqual([]);
    watch.observe('http://10.0.0.5:3000');
    watch.observe('http://10.0.0.6:3000');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.m).toContain('http://10.0.0.5:3000');
    expect(warnings[0]!.m).toContain('APP_URL is https://app.example.com');
    expect(warnings[0]!.o).toMatchObject({ requestOrigin: 'http://10.0.0.5:3000' });
  });

  it('checks dashboard paths only (the gateway and operator endpoints are called by programs on any host)', () => {
    expect(isDashboardPath('/trpc/auth.me')).toBe(true);
    expect(isDashboardPath('/account')).toBe(true);
    expect(isDashboardPath('/')).toBe(true);
    for (const p of ['/v1/chat/completions', '/healthz', '/metrics', '/api/stripe/webhook']) expect(isDashboardPath(p)).toBe(false);
  });
});

describe('returnUrlBase', () => {
  const allowed = ['https://eu.example.com'];
  it('returns to the origin the request came from when it is APP_URL’s or allowed', () => {
    expect(returnUrlBase('https://app.example.com/', allowed, 'https://eu.example.com')).toBe('https://eu.example.com');
    expect(returnUrlBase('https://app.example.com', allowed, 'https://app.example.com')).toBe('https://app.example.com');
  });
  it('else to APP_URL (a Host header is not a place to send anyone)', () => {
    expect(returnUrlBase('https://app.example.com/', allowed, 'https://evil.example.net')).toBe('https://app.example.com');
    expect(returnUrlBase('https://app.example.com', allowed, null)).toBe('https://app.example.com');
    expect(returnUrlBase('https://app.example.com', allowed, 'javascript:alert(1)')).toBe('https://app.example.com');
  });
  it('reads APP_ALLOWED_ORIGINS as origins and refuses what is not one', () => {
    expect(loadConfig({ APP_ALLOWED_ORIGINS: 'https://a.example.com/, http://b.example.com:8080' }).allowedOrigins).toEqual(['https://a.example.com', 'http://b.example.com:8080']);
    expect(() => loadConfig({ APP_ALLOWED_ORIGINS: 'not a url' })).toThrow(/APP_ALLOWED_ORIGINS/);
    expect(originOf('ftp://x.example.com')).toBeNull();
  });
});
