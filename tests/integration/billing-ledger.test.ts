import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { runCommand } from '../../server/events/unit-of-work.js';
import { deductUsage, ledgerCheck, postLedgerEntry } from '../../server/modules/billing/ledger.js';
import { listTransactions, transactionsCsv } from '../../server/modules/billing/service.js';
import { decimalToNanos } from '../../shared/money.js';

let app: TestApp;
let orgId: string;
let ownerId: string;

beforeAll(async () => {
  app = await startTestApp();
  const owner = await signUp(app.url, 'Ledger Owner');
  ownerId = owner.user.id;
  orgId = (await owner.client.organization.create.mutate({ name: 'Ledger Org' })).organization.id;
});
afterAll(async () => {
  await app?.close();
});

/** Every entry's balance_after equals the previous one plus its amount, and the last equals the balance. */
async function expectConsistentLedger(expectedNanos: bigint) {
  const em = app.orm.em.fork();
  const { balanceNanos, ledgerSumNanos } = await ledgerCheck(em, orgId);
  expect(balanceNanos).toBe(expectedNanos);
  expect(ledgerSumNanos).toBe(expectedNanos);
  const rows = await em.execute<{ amount_nanos: string; balance_after_nanos: string }[]>(
    `select amount_nanos, balance_after_nanos from credit_ledger where org_id = ? and status = 'completed' order by id`,
    [orgId],
  );
  let running = 0n;
  for (const r of rows) {
    running += BigInt(r.amount_nanos);
    expect(BigInt(r.balance_after_nanos)).toBe(running);
  }
}

describe('the credit ledger', () => {
  it('keeps balance == ledger sum under 500 parallel usage deductions and concurrent credits', async () => {
    const credit = (amount: string, i: number) =>
      runCommand(app.services, ownerId, (work) =>
        postLedgerEntry(work, orgId, { type: 'adjustment', amountNanos: decimalToNanos(amount), description: `test credit ${i}` }),
      );
    await credit('100', 0);
    // Costs with odd nano amounts, so any float on the path would show.
    const costs = Array.from({ length: 500 }, (_, i) => 123_457n + BigInt(i) * 7n);
    const deductions = costs.map((cost) => runCommand(app.services, null, (work) => deductUsage(work, orgId, cost)));
    const credits = Array.from({ length: 5 }, (_, i) => credit('10.000000001', i + 1));
    await Promise.all([...deductions, ...credits]);
    const expected = decimalToNanos('100') + 5n * decimalToNanos('10.000000001') - costs.reduce((a, b) => a + b, 0n);
    await expectConsistentLedger(expected);
  });

  it('rolls the balance back with the transaction when the command fails', async () => {
    const before = await ledgerCheck(app.orm.em.fork(), orgId);
    await expect(
      runCommand(app.services, null, async (work) => {
        await deductUsage(work, orgId, 5_000_000_000n);
        throw new Error('the rest of the command failed');
      }),
    ).rejects.toThrow('the rest of the command failed');
    await expectConsistentLedger(before.balanceNanos);
  });

  it('refuses a negative usage cost and changes nothing', async () => {
    const before = await ledgerCheck(app.orm.em.fork(), orgId);
    await expect(runCommand(app.services, null, (work) => deductUsage(work, orgId, -1n))).rejects.toThrow(/cannot be negative/);
    await expectConsistentLedger(before.balanceNanos);
  });

  it('lists transactions newest first with a cursor and a type filter, and exports CSV', async () => {
    const em = app.orm.em.fork();
    const first = await listTransactions(em, orgId, { limit: 200 });
    expect(first.items).toHaveLength(200);
    expect(first.nextCursor).not.toBeNull();
    const second = await listTransactions(em, orgId, { limit: 200, cursor: first.nextCursor! });
    const ids = [...first.items, ...second.items].map((t) => BigInt(t.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
    expect(new Set(ids).size).toBe(ids.length);
    const adjustments = await listTransactions(em, orgId, { type: 'adjustment', limit: 50 });
    expect(adjustments.items.map((t) => t.type)).toEqual(Array(6).fill('adjustment'));
    expect(adjustments.items.at(-1)!.amount).toBe('100.00');

    const csv = await transactionsCsv(em, orgId, 'adjustment');
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('id,createdAt,type,status,amount,creditsAfter,description,actor,paymentIntentId,invoiceId,refundId,stripeEventId');
    expect(lines).toHaveLength(7);
    expect(lines[1]).toContain('"10.000000001"');
  });
});
