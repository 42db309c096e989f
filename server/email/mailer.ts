/**
 * Email: written to the outbox in the command's transaction, delivered after commit through
 * nodemailer when SMTP_URL is set; otherwise logged (so invitation links are visible in development).
 * A failed delivery is retried with growing delays (deliverDue, run every minute by pg-boss), and
 * an email the process never got to send (it stopped right after the commit) is sent by the same job.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import nodemailer, { type Transporter } from 'nodemailer';
import { OutboxEmail } from './entities.js';

export interface MailLogger { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void }

export class Mailer {
  private readonly transport: Transporter | null;
  constructor(private readonly orm: MikroORM, smtpUrl: string | undefined, private readonly from: string, private readonly log: MailLogger) {
    this.transport = smtpUrl ? nodemailer.createTransport(smtpUrl) : null;
  }

  get configured(): boolean {
    return this.transport !== null;
  }

  /**
   * Sends one outbox email. It is claimed first (so the after-commit delivery and the retry job never
   * both send it); a failure leaves it pending with the next attempt due after a growing delay, and
   * after MAX_ATTEMPTS it is marked failed.
   */
  async deliver(id: string, to: string, subject: string, text: string, opts: { claimed?: boolean } = {}): Promise<void> {
    const em = this.orm.em.fork();
    // Once handed on, the outbox keeps the email without its secrets (invitation links).
    const kept = redactSecrets(text);
    if (!this.transport) {
      this.log.info({ to, subject, text }, `email (no SMTP_URL set, logged here): ${subject}`);
      await em.nativeUpdate(OutboxEmail, { id }, { status: 'logged', sentAt: new Date(), text: kept }).catch(() => {});
      return;
    }
    if (!opts.claimed) {
      const claimed = await em.execute<{ id: string }[]>(CLAIM_ONE, [id]).catch(() => []);
      if (claimed.length === 0) return; // delivered, or being delivered, elsewhere
    }
    try {
      await this.transport.sendMail({ from: this.from, to, subject, text });
      await em.execute(`update email_outbox set status = 'sent', sent_at = now(), body = ?, error = null, next_attempt_at = null where id = ?`, [kept, id]);
    } catch (err) {
      const rows = await em
        .execute<{ status: string; attempts: number }[]>(RECORD_FAILURE, [String(err).slice(0, 1000), MAX_ATTEMPTS, id])
        .catch(() => [] as { status: string; attempts: number }[]);
      const state = rows[0];
      this.log.warn({ err, to, subject, attempts: state?.attempts }, state?.status === 'failed' ? 'email delivery failed; giving up' : 'email delivery failed; will retry');
    }
  }

  /**
   * Sends what is due: emails whose last attempt failed and whose retry time has come, and emails
   * never attempted a minute after they were written (the process stopped between the commit and
   * the delivery). Run every minute by the job queue; returns how many it attempted.
   */
  async deliverDue(limit = 50): Promise<number> {
    const rows = await this.orm.em.fork().execute<{ id: string; recipient: string; subject: string; body: string }[]>(CLAIM_DUE, [limit]);
    for (const r of rows) await this.deliver(r.id, r.recipient, r.subject, r.body, { claimed: true });
    return rows.length;
  }
}

export const MAX_ATTEMPTS = 6;
// An attempt in progress holds the email for 10 minutes; a crash mid-send makes it due again then.
const CLAIM_ONE = `update email_outbox set next_attempt_at = now() + interval '10 minutes'
  where id = ? and status = 'pending' and (next_attempt_at is null or next_attempt_at <= now()) returning id`;
const CLAIM_DUE = `update email_outbox set next_attempt_at = now() + interval '10 minutes'
  where id in (select id from email_outbox
                where status = 'pending' and coalesce(next_attempt_at, created_at + interval '1 minute') <= now()
                order by created_at limit ? for update skip locked)
  returning id, recipient, subject, body`;
// Retries after 1, 5, 15, 60, then 180 minutes.
const RECORD_FAILURE = `update email_outbox set attempts = attempts + 1, error = ?,
    status = case when attempts + 1 >= ? then 'failed' else 'pending' end,
    next_attempt_at = now() + make_interval(mins => (array[1, 5, 15, 60, 180])[least(attempts + 1, 5)])
  where id = ? returning status, attempts`;

export function redactSecrets(text: string): string {
  return text.replace(/\/invite\/[A-Za-z0-9_-]+/g, '/invite/[redacted]');
}
