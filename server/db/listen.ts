/**
 * One PostgreSQL connection that LISTENs on some channels and comes back by itself: when it is
 * lost, it reconnects with backoff (250 ms doubling to 10 s) and LISTENs again. NOTIFYs sent while
 * it was down are gone, so the owner hears `onLost` and then `onListening` and must resynchronize
 * (the event bus replays from its table; the gateway drops its caches).
 */
import pg from 'pg';

export interface ListenHandlers {
  /** A notification on one of the channels; `client` is the listening connection (to answer on it). */
  notification(channel: string, payload: string | undefined, client: pg.Client): void;
  /** LISTEN is in place (`first`: the first time since start). */
  listening?(first: boolean): void;
  /** The connection was lost; a reconnect is scheduled unless stopped. */
  lost?(): void;
}

interface Log {
  warn(o: unknown, m?: string): void;
}

export class ListenConnection {
  private client: pg.Client | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private delay = 250;
  private connectedOnce = false;

  constructor(
    private readonly opts: { databaseUrl: string; applicationName: string; channels: string[]; what: string },
    private readonly handlers: ListenHandlers,
    private readonly log: Log,
  ) {}

  /** True while LISTEN is in place (notifications are being received). */
  get listening(): boolean {
    return this.client !== null;
  }

  /** Connects and LISTENs; rejects if the first attempt fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: this.opts.applicationName });
    let up = false;
    let gone = false;
    const lost = (err?: unknown) => {
      // Before LISTEN succeeded, the failure surfaces through connect()'s rejection instead.
      if (!up || gone) return;
      gone = true;
      if (this.client === client) this.client = null;
      client.end().catch(() => {});
      this.handlers.lost?.();
      if (this.closed) return;
      this.log.warn({ err }, `${this.opts.what} lost its connection; reconnecting`);
      this.schedule();
    };
    // Notifications that arrive while LISTEN is being set up are delivered too (the owner resyncs after).
    client.on('notification', (msg) => {
      if (!gone) this.handlers.notification(msg.channel, msg.payload, client);
    });
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    try {
      await client.connect();
      for (const channel of this.opts.channels) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    up = true;
    this.delay = 250;
    this.client = client;
    const first = !this.connectedOnce;
    this.connectedOnce = true;
    this.handlers.listening?.(first);
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, 10_000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch((err) => {
        this.log.warn({ err }, `${this.opts.what} could not reconnect`);
        this.schedule();
      });
    }, delay);
    this.timer.unref();
  }
}
