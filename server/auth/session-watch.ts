/**
 * Open WebSockets outlive the request that authenticated them. Every `intervalMs` this instance
 * checks, in one query, that the sessions behind its sockets still exist and have not passed their
 * inactivity expiry, and closes the sockets of those that have (code 4001, like a sign-out).
 * Sign-out and token revocation close sockets at once through the event bus; this catches expiry.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { INACTIVITY_TIMEOUT_MS } from './session.js';
import type { RowOf } from '../db/rows.js';
import type { Session } from '../modules/auth/entities.js';

interface Log { warn(o: unknown, m?: string): void }

export class SocketSessionWatch {
  private readonly sockets = new Map<string, Set<() => void>>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly orm: MikroORM,
    private readonly intervalMs: number,
    private readonly log: Log,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Watches one socket's session; returns the function that stops watching it. */
  watch(sessionId: string, close: () => void): () => void {
    let set = this.sockets.get(sessionId);
    if (!set) this.sockets.set(sessionId, (set = new Set()));
    set.add(close);
    return () => {
      set.delete(close);
      if (set.size === 0 && this.sockets.get(sessionId) === set) this.sockets.delete(sessionId);
    };
  }

  /** One pass (the timer runs it; tests may call it). */
  async check(): Promise<void> {
    if (this.running || this.sockets.size === 0) return;
    this.running = true;
    try {
      const ids = [...this.sockets.keys()];
      const alive = await this.orm.em.fork().execute<RowOf<typeof Session, 'id'>[]>(
        `select id from session where id in (select jsonb_array_elements_text(?::jsonb)) and last_verified_at > now() - make_interval(secs => ?)`,
        [JSON.stringify(ids), INACTIVITY_TIMEOUT_MS / 1000],
      );
      const valid = new Set(alive.map((r) => r.id));
      for (const id of ids) {
        if (valid.has(id)) continue;
        for (const close of this.sockets.get(id) ?? []) close();
        this.sockets.delete(id);
      }
    } catch (err) {
      this.log.warn({ err }, 'could not check the sessions of open sockets');
    } finally {
      this.running = false;
    }
  }
}
