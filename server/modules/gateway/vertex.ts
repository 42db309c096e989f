/**
 * Vertex AI takes OAuth access tokens, not API keys: the service account's JWT (RS256) is exchanged
 * at its token_uri and the token cached until a minute before it expires.
 */
import { createSign } from 'node:crypto';
import { upstreamFailed } from './errors.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** This process's Vertex AI access tokens, per provider key (a member of the gateway, built by createServices). */
export class VertexTokens {
  private readonly tokens = new Map<string, { token: string; expiresAt: number; secret: string }>();

  async accessToken(cacheKey: string, serviceAccountJson: string): Promise<string> {
    const tokens = this.tokens;
    const cached = tokens.get(cacheKey);
    if (cached && cached.secret === serviceAccountJson && cached.expiresAt > Date.now() + 60_000) return cached.token;
    const account = JSON.parse(serviceAccountJson) as { client_email: string; private_key: string; token_uri?: string };
    const tokenUri = account.token_uri ?? 'https://oauth2.googleapis.com/token';
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: account.client_email, scope: SCOPE, aud: tokenUri, iat: now, exp: now + 3600 }))}`;
    const signature = createSign('RSA-SHA256').update(unsigned).sign(account.private_key);
    const res = await fetch(tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${unsigned}.${b64url(signature)}` }),
      signal: AbortSignal.timeout(15_000),
    }).catch(() => null);
    if (!res || !res.ok) throw upstreamFailed(`Google did not issue a Vertex AI access token for ${account.client_email}${res ? ` (HTTP ${res.status})` : ''}`, 'upstream_auth_failed');
    const body = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw upstreamFailed('Google answered without an access token', 'upstream_auth_failed');
    tokens.set(cacheKey, { token: body.access_token, expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000, secret: serviceAccountJson });
    return body.access_token;
  }
}
