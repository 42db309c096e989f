/**
 * The process's pg-boss instance, started on first use: a process that only sends jobs (the admin
 * CLI, a server started without workers) starts it when it first sends one, and startJobs adds the
 * workers and cron schedules to the same instance.
 */
import PgBoss from 'pg-boss';

interface Log {
  error(o: unknown, m?: string): void;
}

export class JobQueue {
  private started: Promise<PgBoss> | null = null;
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Log,
  ) {}

  /** The started pg-boss instance. */
  boss(): Promise<PgBoss> {
    this.started ??= (async () => {
      const boss = new PgBoss({ connectionString: this.databaseUrl, max: 4 });
      boss.on('error', (err) => this.log.error({ err }, 'job queue error'));
      await boss.start();
      return boss;
    })();
    // A failed start is not cached: the next use tries again.
    this.started.catch(() => (this.started = null));
    return this.started;
  }

  /** Creates the queue once per process (pg-boss 10 sends only to existing queues). */
  async ensureQueue(name: string): Promise<PgBoss> {
    const boss = await this.boss();
    let created = this.queues.get(name);
    if (!created) {
      created = boss.createQueue(name);
      this.queues.set(name, created);
      created.catch(() => this.queues.delete(name));
    }
    await created;
    return boss;
  }

  async send(name: string, data: object, options: PgBoss.SendOptions): Promise<string | null> {
    const boss = await this.ensureQueue(name);
    return boss.send(name, data, options);
  }

  async stop(): Promise<void> {
    const started = this.started;
    this.started = null;
    if (!started) return;
    const boss = await started.catch(() => null);
    await boss?.stop({ graceful: true, wait: true }).catch(() => {});
  }
}
