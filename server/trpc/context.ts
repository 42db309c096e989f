import type { EntityManager } from '@mikro-orm/postgresql';
import type { UserEntity } from '../modules/auth/entities.js';
/** Built by createServices (server/services.ts), once per process. */
import type { Services } from '../services.js';

export interface Context {
  services: Services;
  /** A fresh EntityManager fork per procedure call (set by the base middleware). */
  em: EntityManager;
  user: UserEntity | null;
  sessionId: string | null;
  tokenId: string | null;
  ip: string;
  /** The browser's or program's User-Agent (kept with a new session, for the sessions list). */
  userAgent: string | null;
  /** The scheme and host the request arrived on (`https://host`), or null without a request. */
  requestOrigin: string | null;
  /** Whether a browser request came from our own origin (mutations from elsewhere are refused). */
  sameOrigin: boolean;
  /** Set the session cookie on the HTTP response (no-op on WebSocket calls). */
  setCookie(value: string): void;
  /** A stable id for the WebSocket connection (or the HTTP request). */
  connectionId: string;
  transport: 'http' | 'ws' | 'internal';
}

export interface InnerContextOptions {
  services: Services;
  user?: UserEntity | null;
  sessionId?: string | null;
  tokenId?: string | null;
  ip?: string;
  userAgent?: string | null;
  requestOrigin?: string | null;
  sameOrigin?: boolean;
  setCookie?: (value: string) => void;
  connectionId?: string;
  transport?: Context['transport'];
}

/** Builds a context without a request: tests and createCaller use it directly. */
export function createContextInner(opts: InnerContextOptions): Context {
  return {
    services: opts.services,
    em: opts.services.orm.em.fork(),
    user: opts.user ?? null,
    sessionId: opts.sessionId ?? null,
    tokenId: opts.tokenId ?? null,
    ip: opts.ip ?? '127.0.0.1',
    userAgent: opts.userAgent ?? null,
    requestOrigin: opts.requestOrigin ?? null,
    sameOrigin: opts.sameOrigin ?? true,
    setCookie: opts.setCookie ?? (() => {}),
    connectionId: opts.connectionId ?? crypto.randomUUID(),
    transport: opts.transport ?? 'internal',
  };
}
