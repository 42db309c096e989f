/** Gateway key format: `sk-gw-` + 40 random base62 characters; the first 12 characters are its visible prefix. */
import { createHash, hash, randomBytes } from 'node:crypto';

export const KEY_PREFIX = 'sk-gw-';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const VISIBLE = KEY_PREFIX.length + 6;

export function generateApiKey(): { key: string; prefix: string; hash: Buffer } {
  // 62^40 is about 2^238; rejection sampling keeps every character uniform.
  let body = '';
  while (body.length < 40) {
    for (const byte of randomBytes(48)) {
      if (byte < 248 && body.length < 40) body += ALPHABET[byte % 62];
    }
  }
  const key = KEY_PREFIX + body;
  return { key, prefix: key.slice(0, VISIBLE), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The same SHA-256 as hex, one-shot (the gateway's per-call lookup key). */
export function apiKeyHashHex(key: string): string {
  return hash('sha256', key, 'hex');
}

/** Cheap shape check before any lookup (anything else is a bad key without touching the database). */
export function looksLikeApiKey(key: string): boolean {
  return key.length === KEY_PREFIX.length + 40 && key.startsWith(KEY_PREFIX) && /^[A-Za-z0-9]+$/.test(key.slice(KEY_PREFIX.length));
}
