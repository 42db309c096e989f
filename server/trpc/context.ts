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

/**
 * A context whose `em` is forked on first use and is not an own property: every procedure gets
 * its own fork from the base middleware (which spreads the context), so an eager fork here would
 * be thrown away on HTTP and, on a WebSocket, kept for as long as the connection stays open
 * (several kilobytes per idle subscriber; bench/live-fanout). A class, so that the lazy `em` is
 * one getter on the prototype rather than closures on every context.
 */
class LazyContext implements Omit<Context, 'em'> {
  services: Services;
  user: UserEntity | null;
  sessionId: string | null;
  tokenId: string | null;
  ip: string;
  userAgent: string | null;
  requestOrigin: string | null;
  sameOrigin: boolean;
  setCookie: (value: string) => void;
  connectionId: string;
  transport: Context['transport'];
  #em: EntityManager | undefined;

  constructor(opts: InnerContextOptions) {
    this.services = opts.services;
    this.user = opts.user ?? null;
    this.sessionId = opts.sessionId ?? null;
    this.tokenId = opts.tokenId ?? null;
    this.ip = opts.ip ?? '127.0.0.1';
    this.userAgent = opts.userAgent ?? null;
    this.requestOrigin = opts.requestOrigin ?? null;
    this.sameOrigin = opts.sameOrigin ?? true;
    this.setCookie = opts.setCookie ?? noCookie;
    this.connectionId = opts.connectionId ?? crypto.randomUUID();
    this.transport = opts.transport ?? 'internal';
  }

  get em(): EntityManager {
    return (this.#em ??= this.services.orm.em.fork());
  }

  set em(value: EntityManager) {
    this.#em = value;
  }
}

const noCookie = () => {};

/** Builds a context without a request: tests and createCaller use it directly. */
export function createContextInner(opts: InnerContextOptions): Context {
  return new LazyContext(opts);
}
