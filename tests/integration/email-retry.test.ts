/**
 * Email is not lost: a delivery that fails (the SMTP server is down) stays in the outbox and is
 * retried with growing delays until it goes through; an email the process never got to send (it
 * stopped between the commit and the delivery) is sent by the same job; after the last attempt the
 * email is marked failed. Real nodemailer against a small local SMTP server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp, type BrowserLike } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { waitFor } from '../helpers/billing.js';
import { freePort, startFakeSmtp, type FakeSmtp } from '../helpers/smtp.js';
import { MAX_ATTEMPTS } from '../../server/email/mailer.js';

let app: TestApp;
let port: number;
let smtp: FakeSmtp | null = null;
let owner: BrowserLike;

interface OutboxRow {
  id: string;
  status: string;
  attempts: number;
  due_in_s: number | null;
  body: string;
  error: string | null;
}
const outbox = async (recipient: string) =>
  (
    await sql<OutboxRow>(
      app,
      `select id, status, attempts, extract(epoch from next_attempt_at - now())::int as due_in_s, body, error from email_outbox where recipient = ?`,
      [recipient],
    )
  )[0];
const makeDue = (id: string) => sql(app, `update email_outbox set next_attempt_at = now() - interval '1 second' where id = ?`, [id]);

beforeAll(async () => {
  port = await freePort();
  app = await startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${port}` } });
  owner = await signUp(app.url, 'Mail Owner');
});
afterAll(async () => {
  await smtp?.close();
  await app?.close();
});

describe('email retries', () => {
  it('keeps a failed invitation email and sends it once the SMTP server is back', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Mail Co' });
    const invitee = `invitee-${randomUUID()}@example.com`;
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId: organization.id, email: invitee, role: 'developer' });
    // The SMTP server is down: the first attempt fails, the email waits about a minute.
    const failed = await waitFor(async () => {
      const row = await outbox(invitee);
      return row && row.attempts === 1 ? row : null;
    });
    expect(failed).toMatchObject({ status: 'pending' });
    expect(failed.due_in_s).toBeGreaterThan(30);
    expect(failed.error).toMatch(/ECONNREFUSED/);
    // Not due yet: the job leaves it alone.
    expect(await app.services.mailer.deliverDue()).toBe(0);

    smtp = await startFakeSmtp(port);
    await makeDue(failed.id);
    expect(await app.services.mailer.deliverDue()).toBe(1);
    const sent = await outbox(invitee);
    expect(sent).toMatchObject({ status: 'sent', attempts: 1, due_in_s: null });
    expect(sent!.body).not.toContain(inviteUrl.split('/invite/')[1]!);
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]!.to.join()).toContain(invitee);
    // The message as sent carries the real link (quoted-printable: soft line breaks removed).
    expect(smtp.received[0]!.data.replace(/=\r\n/g, '')).toContain(inviteUrl.split('/invite/')[1]!);
    // Sent once: running the job again sends nothing more.
    expect(await app.services.mailer.deliverDue()).toBe(0);
    expect(smtp.received).toHaveLength(1);
  });

  it('sends an email the process stopped before delivering, a minute after it was written', async () => {
    smtp ??= await startFakeSmtp(port);
    const before = smtp.received.length;
    const to = `stranded-${randomUUID()}@example.com`;
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at) values (?, ?, 'Stranded', 'hello', 'pending', now() - interval '2 minutes')`, [randomUUID(), to]);
    const fresh = `fresh-${randomUUID()}@example.com`;
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at) values (?, ?, 'Fresh', 'hello', 'pending', now())`, [randomUUID(), fresh]);
    expect(await app.services.mailer.deliverDue()).toBe(1);
    expect(await outbox(to)).toMatchObject({ status: 'sent' });
    expect(await outbox(fresh)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(smtp.received.length).toBe(before + 1);
  });

  it(`gives up after ${MAX_ATTEMPTS} failed attempts`, async () => {
    await smtp?.close();
    smtp = null;
    const to = `doomed-${randomUUID()}@example.com`;
    const id = randomUUID();
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at, attempts) values (?, ?, 'Doomed', 'hello', 'pending', now() - interval '1 hour', ?)`, [id, to, MAX_ATTEMPTS - 2]);
    expect(await app.services.mailer.deliverDue()).toBe(1);
    expect(await outbox(to)).toMatchObject({ status: 'pending', attempts: MAX_ATTEMPTS - 1 });
    await makeDue(id);
    expect(await app.services.mailer.deliverDue()).toBe(1);
    expect(await outbox(to)).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS });
    await makeDue(id);
    expect(await app.services.mailer.deliverDue()).toBe(0);
  });
});
