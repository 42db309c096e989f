/**
 * Email: written to the outbox in the command's transaction, delivered after commit through
 * nodemailer when SMTP_URL is set; otherwise logged (so invitation links are visible in development).
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

  async deliver(id: string, to: string, subject: string, text: string): Promise<void> {
    const em = this.orm.em.fork();
    // Once handed on, the outbox keeps the email without its secrets (invitation links).
    const kept = redactSecrets(text);
    if (!this.transport) {
      this.log.info({ to, subject, text }, `email (no SMTP_URL set, logged here): ${subject}`);
      await em.nativeUpdate(OutboxEmail, { id }, { status: 'logged', sentAt: new Date(), text: kept }).catch(() => {});
      return;
    }
    try {
      await this.transport.sendMail({ from: this.from, to, subject, text });
      await em.nativeUpdate(OutboxEmail, { id }, { status: 'sent', sentAt: new Date(), text: kept });
    } catch (err) {
      this.log.warn({ err, to, subject }, 'email delivery failed');
      await em.nativeUpdate(OutboxEmail, { id }, { status: 'failed', error: String(err).slice(0, 1000) }).catch(() => {});
    }
  }
}

export function redactSecrets(text: string): string {
  return text.replace(/\/invite\/[A-Za-z0-9_-]+/g, '/invite/[redacted]');
}
