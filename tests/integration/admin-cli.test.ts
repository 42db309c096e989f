/** The operator command (`npm run admin -- ...`), run as a real process against the test database. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { sql } from '../helpers/db-state.js';
import { grantCredits } from '../helpers/gateway.js';
import { waitFor } from '../helpers/billing.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { deductUsage } from '../../server/modules/billing/ledger.js';
import { decimalToNanos } from '../../shared/money.js';

const run = promisify(execFile);
/** Each command is a fresh Node process (tsx, MikroORM, migrations check): seconds apiece on a busy CI machine. */
const CLI_TIMEOUT_MS = 120_000;
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

async function admin(...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'server/admin.ts', ...args], { env: { ...process.env, DATABASE_URL: app.databaseUrl, NODE_ENV: 'test' } });
}

describe('npm run admin', () => {
  it('raises limits, sets Enterprise, adjusts credits; refuses bad input', async () => {
    const owner = await signUp(app.url, 'Operator Customer');
    const { organization } = await owner.client.organization.create.mutate({ name: 'Big Co' });
    await admin('user:org-limit', owner.email, '5');
    for (const name of ['B', 'C', 'D', 'E']) await owner.client.organization.create.mutate({ name });
    await expect(owner.client.organization.create.mutate({ name: 'F' })).rejects.toThrow(/allows 5 organizations/);

    await admin('org:plan', organization.id, 'enterprise');
    expect((await owner.client.organization.get.query({ orgId: organization.id })).plan).toBe('enterprise');

    await admin('billing:adjust', organization.id, '12.5', 'goodwill', 'credit');
    const { items } = await owner.client.billing.transactions.query({ orgId: organization.id });
    expect(items[0]).toMatchObject({ type: 'adjustment', amount: '12.50', description: 'Adjustment by support: goodwill credit' });

    await expect(admin('org:plan', organization.id, 'platinum')).rejects.toMatchObject({ code: 1 });
    await expect(admin('user:org-limit', 'nobody@example.com', '9')).rejects.toMatchObject({ code: 1 });
    expect((await owner.client.organization.get.query({ orgId: organization.id })).plan).toBe('enterprise');
  }, CLI_TIMEOUT_MS);

  it('fires the same budget alert as a server-side debit when billing:adjust takes the balance below it', async () => {
    const owner = await signUp(app.url, 'Alert Customer');
    const orgIds: string[] = [];
    for (const name of ['Debited Here', 'Adjusted There']) {
      const { organization } = await owner.client.organization.create.mutate({ name });
      await grantCredits(app, organization.id, '30');
      await owner.client.billing.budgetAlerts.set.mutate({ orgId: organization.id, kind: 'balance_below', threshold: 20 });
      orgIds.push(organization.id);
    }
    const [server, cli] = orgIds as [string, string];
    // The same $15 debit, once in the server process, once through the operator command.
    await runCommand(app.services, null, (work) => deductUsage(work, server, decimalToNanos('15')));
    await admin('billing:adjust', cli, '-15', 'test', 'debit');

    const outcome = async (orgId: string) => {
      const alert = await sql<{ triggered: boolean }>(app, `select triggered from budget_alert where org_id = ? and kind = 'balance_below'`, [orgId]);
      const events = await sql<{ payload: { kind: string; threshold: string; value: string } }>(app, `select payload from org_event where org_id = ? and type = 'budget.alert'`, [orgId]);
      const emails = await sql<{ recipient: string; subject: string; body: string; status: string }>(
        app,
        `select recipient, subject, body, status from email_outbox where subject = 'Low credit balance' and body like ?`,
        [`%${orgId === server ? 'Debited Here' : 'Adjusted There'}%`],
      );
      return {
        triggered: alert[0]?.triggered,
        events: events.map((e) => ({ kind: e.payload.kind, threshold: e.payload.threshold, value: e.payload.value })),
        emails: emails.map((m) => ({ to: m.recipient, status: m.status, body: m.body.replace(/Debited Here|Adjusted There/, 'ORG') })),
      };
    };
    const here = await waitFor(async () => {
      const o = await outcome(server);
      return o.emails.every((m) => m.status !== 'pending') && o.emails.length > 0 ? o : null;
    });
    expect(here).toMatchObject({ triggered: true, events: [{ kind: 'balance_below', threshold: '20.00', value: '15.00' }], emails: [{ to: owner.email.toLowerCase() }] });
    expect(await outcome(cli)).toEqual(here);
  }, CLI_TIMEOUT_MS);
});
