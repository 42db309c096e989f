/**
 * Operator commands (`npm run admin -- <command> ...`): how "contact support to raise the limit" is done.
 * Uses DATABASE_URL, else the embedded PostgreSQL (the running server's, or started here if it is down).
 */
import pg from 'pg';
import { loadConfig } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { createServices } from './services.js';
import { runCommand } from './events/unit-of-work.js';
import { postLedgerEntry } from './modules/billing/ledger.js';
import { creditBackUsage } from './modules/billing/refunds.js';
import { deletedOrganizationRecords, listDeletedOrganizations } from './modules/billing/deleted-organizations.js';
import { decimalToNanos, nanosToDecimal } from '../shared/money.js';
import { PLAN_IDS, type PlanId } from '../shared/plans.js';
import type { RowOf } from './db/rows.js';
import type { Organization } from './modules/organizations/entities.js';

const USAGE = `usage: npm run admin -- <command>
  user:org-limit <email> <n|default>      organizations the user may own
  org:project-limit <orgId> <n|default>   projects the organization may have
  user:show <email>                       the user's organizations and roles
  org:plan <orgId> <free|pro|enterprise>  set the plan (Enterprise is set only here)
  billing:adjust <orgId> <amount> <reason...>        add (or, negative, remove) credits
  billing:credit-back <orgId> <transactionId> <reason...>  return a usage charge's credits (support only)
  org:deleted [orgId]                     deleted organizations; with an id, its ledger, payments, refunds, audit trail`;

function parseLimit(value: string | undefined): number | null {
  if (value === 'default') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new Error(`limit must be a whole number or "default", got ${value}`);
  return n;
}

async function databaseUrl(): Promise<{ url: string; embedded: EmbeddedDatabase | null }> {
  const config = loadConfig();
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: null };
  const url = `postgres://postgres:postgres@127.0.0.1:${config.embeddedPgPort}/gateway`;
  const probe = new pg.Client({ connectionString: url });
  probe.on('error', () => {}); // a failed probe rejects connect(); nothing else to report
  try {
    await probe.connect();
    await probe.end();
    return { url, embedded: null };
  } catch {
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
    return { url: embedded.url, embedded };
  }
}

async function main(args: string[]): Promise<number> {
  const [command, given, value, ...rest] = args;
  // `org:deleted` alone lists them all; every other command needs its target.
  const target = given ?? (command === 'org:deleted' ? '' : undefined);
  if (!command || target === undefined) {
    console.error(USAGE);
    return 2;
  }
  const { url, embedded } = await databaseUrl();
  const log = { info: () => {}, warn: (o: unknown) => console.warn(o), error: (o: unknown) => console.error(o) };
  // The same services as the server (balance observers: budget alerts, auto top-up; the mailer),
  // without the gateway. Events from here reach the running server through NOTIFY.
  const root = await createServices(loadConfig(), { databaseUrl: url, log, gateway: false, presence: false });
  const deps = root.services;
  try {
    const em = deps.orm.em.fork();
    const reason = rest.join(' ').trim();
    switch (command) {
      case 'org:plan': {
        if (!PLAN_IDS.includes(value as PlanId)) throw new Error(`plan must be one of ${PLAN_IDS.join(', ')}`);
        await runCommand(deps, null, async (work) => {
          const rows = await work.em.execute<(RowOf<typeof Organization, 'version' | 'name' | 'billing_email' | 'retention_level'> & { old: string })[]>(
            `update organization o set plan = ?, version = o.version + 1 from organization prev where o.id = ? and prev.id = o.id
             returning o.version, o.name, o.billing_email, o.retention_level, prev.plan as old`,
            [value, target],
          );
          const o = rows[0];
          if (!o) throw new Error(`no organization ${target}`);
          work.audit(target, 'billing.plan_changed', { type: 'organization', id: target }, { plan: o.old }, { plan: value, by: 'operator' });
          work.emit(target, { type: 'organization.updated', version: o.version, name: o.name, billingEmail: o.billing_email, retentionLevel: o.retention_level, plan: value! });
        });
        console.log(`${target}: plan ${value}`);
        return 0;
      }
      case 'billing:adjust': {
        if (!value || !reason) throw new Error('usage: billing:adjust <orgId> <amount> <reason>');
        const posted = await runCommand(deps, null, (work) =>
          postLedgerEntry(work, target, { type: 'adjustment', amountNanos: decimalToNanos(value), description: `Adjustment by support: ${reason}` }),
        );
        console.log(`${target}: balance ${nanosToDecimal(posted.balanceAfterNanos)}`);
        return 0;
      }
      case 'billing:credit-back': {
        if (!value || !reason) throw new Error('usage: billing:credit-back <orgId> <transactionId> <reason>');
        const result = await runCommand(deps, null, (work) => creditBackUsage(work, target, value, reason));
        console.log(`${target}: credited back ${result.amount}, balance ${result.credits}`);
        return 0;
      }
      case 'org:deleted': {
        if (!target) {
          const deleted = await listDeletedOrganizations(em);
          if (deleted.length === 0) console.log('no deleted organizations');
          else console.table(deleted.map((d) => ({ id: d.id, name: d.name, plan: d.plan, deletedAt: d.deletedAt.toISOString(), deletedBy: d.deletedBy, forfeitedCredits: d.forfeitedCredits, subscription: d.subscription })));
          return 0;
        }
        const records = await deletedOrganizationRecords(em, target);
        console.log(JSON.stringify(records, null, 2));
        return 0;
      }
      case 'user:org-limit': {
        const rows = await em.execute('update app_user set organization_limit = ? where email = ? returning id', [parseLimit(value), target.toLowerCase()]);
        if (rows.length === 0) throw new Error(`no user with email ${target}`);
        console.log(`${target}: organization limit ${value}`);
        return 0;
      }
      case 'org:project-limit': {
        const rows = await em.execute('update organization set project_limit = ? where id = ? returning id', [parseLimit(value), target]);
        if (rows.length === 0) throw new Error(`no organization ${target}`);
        console.log(`${target}: project limit ${value}`);
        return 0;
      }
      case 'user:show': {
        const rows = await em.execute(
          `select o.id, o.name, m.role, o.plan from app_user u join membership m on m.user_id = u.id join organization o on o.id = m.org_id where u.email = ? order by o.name`,
          [target.toLowerCase()],
        );
        console.table(rows);
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } finally {
    await root.close();
    await embedded?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
