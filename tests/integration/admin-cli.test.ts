/** The operator command (`npm run admin -- ...`), run as a real process against the test database. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';

const run = promisify(execFile);
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
  });
});
