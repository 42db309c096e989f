/**
 * Email is not lost: each outbox email is a pg-boss job; a delivery that fails (the SMTP server is
 * down) is retried by pg-boss until it goes through; after the last attempt the email is marked
 * failed; an email the process never handed over (it stopped between the commit and the hand-over)
 * is handed over by the sweep. Real nodemailer against a small local SMTP server, real pg-boss
 * workers (retry delays shortened to a second).
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
let ownerEmail: string;

interface OutboxRow {
  id: string;
  status: string;
  attempts: number;
  body: string;
  error: string | null;
}
const outbox = async (recipient: string) =>
  (await sql<OutboxRow>(app, `select id, status, attempts, body, error from email_outbox where recipient = ?`, [recipient]))[0];
const jobState = async (id: string) => (await sql<{ state: string }>(app, `select state from pgboss.job where id = ?`, [id]))[0]?.state ?? null;

beforeAll(async () => {
  port = await freePort();
  app = await startTestApp({
    env: { SMTP_URL: `smtp://127.0.0.1:${port}` },
    jobs: true,
    emailRetry: { retryDelaySeconds: 1, retryBackoff: false, pollingIntervalSeconds: 0.5 },
  });
  const signedUp = await signUp(app.url, 'Mail Owner');
  owner = signedUp;
  ownerEmail = signedUp.email;
});
afterAll(async () => {
  await smtp?.close();
  await app?.close();
});

describe('email retries (pg-boss)', () => {
  it('keeps a failed invitation email and sends it once the SMTP server is back', async () => {
    const { organization } = await owner.client.organization.create.mutate({ name: 'Mail Co' });
    const invitee = `invitee-${randomUUID()}@example.com`;
    const { inviteUrl } = await owner.client.team.invite.mutate({ orgId: organization.id, email: invitee, role: 'developer' });
    // The SMTP server is down: the first attempt fails and the email stays pending, its job waiting to retry.
    const failed = await waitFor(async () => {
      const row = await outbox(invitee);
      return row && row.attempts >= 1 ? row : null;
    });
    expect(failed).toMatchObject({ status: 'pending' });
    expect(failed.error).toMatch(/ECONNREFUSED/);

    smtp = await startFakeSmtp(port);
    const sent = await waitFor(async () => {
      const row = await outbox(invitee);
      return row?.status === 'sent' ? row : null;
    });
    expect(sent.attempts).toBeLessThan(MAX_ATTEMPTS);
    expect(sent.body).not.toContain(inviteUrl.split('/invite/')[1]!);
    // (The owner's own sign-up verification email, also held back, goes out too: wait for it, so later counts are this file's own.)
    await waitFor(async () => (await outbox(ownerEmail))?.status === 'sent');
    const toInvitee = smtp.received.filter((m) => m.to.join().includes(invitee));
    expect(toInvitee).toHaveLength(1);
    // The message as sent carries the real link (quoted-printable: soft line breaks removed).
    expect(toInvitee[0]!.data.replace(/=\r\n/g, '')).toContain(inviteUrl.split('/invite/')[1]!);
    // One job per email (its id is the outbox id), done: nothing is sent again.
    expect(await waitFor(async () => ((await jobState(failed.id)) === 'completed' ? 'completed' : null))).toBe('completed');
    await app.services.mailer.deliver(failed.id, invitee, 'again', 'again');
    expect(await sql(app, `select id from pgboss.job where id = ?`, [failed.id])).toHaveLength(1);
  });

  it('hands over an email the process stopped before handing over, a minute after it was written', async () => {
    smtp ??= await startFakeSmtp(port);
    const before = smtp.received.length;
    const to = `stranded-${randomUUID()}@example.com`;
    const strandedId = randomUUID();
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at) values (?, ?, 'Stranded', 'hello', 'pending', now() - interval '2 minutes')`, [strandedId, to]);
    const fresh = `fresh-${randomUUID()}@example.com`;
    const freshId = randomUUID();
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at) values (?, ?, 'Fresh', 'hello', 'pending', now())`, [freshId, fresh]);
    expect(await app.services.mailer.handOverStranded()).toBe(1);
    await waitFor(async () => (await outbox(to))?.status === 'sent');
    expect(await outbox(fresh)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await jobState(freshId)).toBeNull();
    expect(smtp.received.length).toBe(before + 1);
  });

  it(`gives up after ${MAX_ATTEMPTS} failed attempts`, async () => {
    await smtp?.close();
    smtp = null;
    const to = `doomed-${randomUUID()}@example.com`;
    const id = randomUUID();
    await sql(app, `insert into email_outbox (id, recipient, subject, body, status, created_at) values (?, ?, 'Doomed', 'hello', 'pending', now())`, [id, to]);
    await app.services.mailer.deliver(id, to, 'Doomed', 'hello');
    const failed = await waitFor(async () => {
      const row = await outbox(to);
      return row?.status === 'failed' ? row : null;
    }, 40_000);
    expect(failed).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS });
    expect(failed.error).toMatch(/ECONNREFUSED/);
    // pg-boss marks the job completed just after the handler that wrote 'failed' returns.
    await waitFor(async () => (await jobState(id)) === 'completed', 10_000, 'the job to be completed');
  }, 60_000);
});
