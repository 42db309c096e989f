/**
 * Email: written to the outbox in the command's transaction, delivered after commit through
 * nodemailer when SMTP_URL is set; otherwise logged (so invitation links are visible in development).
 *
 * With SMTP, each email is one pg-boss job (job id = outbox id, so handing it over twice makes one
 * job). pg-boss owns the attempts: it holds the job for one worker at a time (the claim), retries a
 * failed send with exponential backoff (retryLimit, retryDelay, retryBackoff) and, after the last
 * attempt, the email is marked failed in the outbox. An email the process never handed over (it
 * stopped between the commit and the hand-over) is handed over by a sweep (handOverStranded).
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import nodemailer, { type Transporter } from 'nodemailer';
import type PgBoss from 'pg-boss';
import { OutboxEmail } from './entities.js';
import type { JobQueue } from '../jobs/queue.js';
import type { RowOf } from '../db/rows.js';

export interface MailLogger { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void }

export const EMAIL_QUEUE = 'email';
/** Attempts in all (the first and pg-boss's retries). */
export const MAX_ATTEMPTS = 6;

export interface EmailRetryPolicy {
  /** Seconds before the first retry; with backoff it about doubles per attempt (pg-boss adds jitter). */
  retryDelaySeconds: number;
  retryBackoff: boolean;
  /** How often an idle email worker looks for due jobs. */
  pollingIntervalSeconds: number;
}
/** 1-2, 2-4, 4-8, 8-16 and 16-32 minutes: five retries over roughly 30 to 60 minutes. */
export const DEFAULT_EMAIL_RETRY: EmailRetryPolicy = { retryDelaySeconds: 60, retryBackoff: true, pollingIntervalSeconds: 2 };

export class Mailer {
  private readonly transport: Transporter | null;
  readonly retry: EmailRetryPolicy;
  private readonly queue: JobQueue | null;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly orm: MikroORM,
    smtpUrl: string | undefined,
    private readonly from: string,
    private readonly log: MailLogger,
    opts: { queue?: JobQueue; retry?: Partial<EmailRetryPolicy> } = {},
  ) {
    this.transport = smtpUrl ? nodemailer.createTransport(smtpUrl) : null;
    this.queue = opts.queue ?? null;
    this.retry = { ...DEFAULT_EMAIL_RETRY, ...opts.retry };
  }

  get configured(): boolean {
    return this.transport !== null;
  }

  /**
   * After commit: hands one outbox email on. Without SMTP it is logged at once; with SMTP it becomes
   * a pg-boss job (delivered by whichever instance runs the email worker). A failed hand-over leaves
   * it pending for handOverStranded.
   */
  deliver(id: string, to: string, subject: string, text: string): Promise<void> {
    const handing = this.handOn(id, to, subject, text).finally(() => this.inFlight.delete(handing));
    this.inFlight.add(handing);
    return handing;
  }

  /** Waits for the hand-overs started so far (shutdown: a one-shot command must not exit before them). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async handOn(id: string, to: string, subject: string, text: string): Promise<void> {
    if (!this.transport) {
      this.log.info({ to, subject, text }, `email (no SMTP_URL set, logged here): ${subject}`);
      // Once handed on, the outbox keeps the email without its secrets (invitation links).
      await this.orm.em.fork().nativeUpdate(OutboxEmail, { id }, { status: 'logged', sentAt: new Date(), text: redactSecrets(text) }).catch((err: unknown) => {
        this.log.warn({ err, id }, 'could not mark a logged email in the outbox');
      });
      return;
    }
    await this.handOver(id).catch((err: unknown) => this.log.warn({ err, id, to, subject }, 'email not handed to the job queue yet; the outbox sweep will'));
  }

  private async handOver(id: string): Promise<void> {
    if (!this.queue) throw new Error('no job queue');
    await this.queue.send(EMAIL_QUEUE, { id }, {
      id,
      retryLimit: MAX_ATTEMPTS - 1,
      retryDelay: this.retry.retryDelaySeconds,
      retryBackoff: this.retry.retryBackoff,
    });
  }

  /**
   * One attempt, run by the email worker for a pg-boss job. Sends the outbox email if it is still
   * pending; a failure is recorded and rethrown (pg-boss retries it) unless this was the last attempt,
   * which marks the email failed.
   */
  async attempt(job: Pick<PgBoss.JobWithMetadata<{ id: string }>, 'data' | 'retryCount' | 'retryLimit'>): Promise<'sent' | 'skipped' | 'retry' | 'failed'> {
    const em = this.orm.em.fork();
    const rows = await em.execute<RowOf<typeof OutboxEmail, 'recipient' | 'subject' | 'body'>[]>(
      `select recipient, subject, body from email_outbox where id = ? and status = 'pending'`,
      [job.data.id],
    );
    const row = rows[0];
    if (!row) return 'skipped'; // sent, logged or failed already
    if (!this.transport) {
      await this.deliver(job.data.id, row.recipient, row.subject, row.body);
      return 'sent';
    }
    try {
      await this.transport.sendMail({ from: this.from, to: row.recipient, subject: row.subject, text: row.body });
    } catch (err) {
      const last = job.retryCount >= job.retryLimit;
      const state = await em.execute<RowOf<typeof OutboxEmail, 'attempts'>[]>(
        `update email_outbox set attempts = attempts + 1, error = ?, status = ? where id = ? returning attempts`,
        [String(err).slice(0, 1000), last ? 'failed' : 'pending', job.data.id],
      );
      this.log.warn({ err, to: row.recipient, subject: row.subject, attempts: state[0]?.attempts }, last ? 'email delivery failed; giving up' : 'email delivery failed; will retry');
      if (last) return 'failed';
      throw err;
    }
    await em.execute(`update email_outbox set status = 'sent', sent_at = now(), body = ?, error = null where id = ?`, [redactSecrets(row.body), job.data.id]);
    return 'sent';
  }

  /**
   * Hands over emails still pending a minute after they were written (the process stopped between
   * the commit and the hand-over). Handing over one that already has its job (waiting for a retry)
   * changes nothing. Returns how many pending emails it handed over (again).
   */
  async handOverStranded(limit = 200): Promise<number> {
    const rows = await this.orm.em.fork().execute<RowOf<typeof OutboxEmail, 'id' | 'recipient' | 'subject' | 'body'>[]>(
      `select id, recipient, subject, body from email_outbox where status = 'pending' and created_at < now() - interval '1 minute' order by created_at limit ?`,
      [limit],
    );
    for (const r of rows) {
      if (this.transport) await this.handOver(r.id);
      else await this.deliver(r.id, r.recipient, r.subject, r.body);
    }
    return rows.length;
  }
}

export function redactSecrets(text: string): string {
  return text
    .replace(/\/invite\/[A-Za-z0-9_-]+/g, '/invite/[redacted]')
    .replace(/\/(signin\/link|reset-password|verify-email|confirm-email)\?token=[A-Za-z0-9_-]+/g, '/$1?token=[redacted]');
}
