import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { EventBus } from '../events/bus.js';
import type { Mailer } from '../email/mailer.js';
import type { SecretBox } from '../auth/secrets.js';
import type { UserEntity } from '../modules/auth/entities.js';
import type { PresenceService } from '../modules/live/presence.js';
import type { BillingProvider } from '../modules/billing/provider.js';

/** Everything long-lived the procedures need; built once per process by buildApp. */
export interface Services {
  orm: MikroORM;
  bus: EventBus;
  mailer: Mailer;
  config: Config;
  secretBox: SecretBox;
  presence: PresenceService;
  billing: BillingProvider;
  appUrl: string;
  log: { info(o: unknown, m?: string): void; warn(o: unknown, m?: string): void; error(o: unknown, m?: string): void };
}

export interface Context {
  services: Services;
  /** A fresh EntityManager fork per procedure call (set by the base middleware). */
  em: EntityManager;
  user: UserEntity | null;
  sessionId: string | null;
  tokenId: string | null;
  ip: string;
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
    sameOrigin: opts.sameOrigin ?? true,
    setCookie: opts.setCookie ?? (() => {}),
    connectionId: opts.connectionId ?? crypto.randomUUID(),
    transport: opts.transport ?? 'internal',
  };
}
