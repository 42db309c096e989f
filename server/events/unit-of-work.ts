/**
 * One unit of work per command: the domain change, its audit entries, its events and its emails
 * commit together. Events reach subscribers, on this instance and every other, through the NOTIFY
 * issued inside the same transaction: only if and when it commits, in commit order (bus.ts).
 */
import { failureHandler, reportFailure, type FailureLog } from '../observability/failures.js';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { OrgEvent } from '../../shared/events.js';
import { AuditEntry } from '../modules/audit/entities.js';
import { OutboxEmail } from '../email/entities.js';
import { ORG_CHANNEL, type BusEvent, type EventBus } from './bus.js';
import type { Mailer } from '../email/mailer.js';
import type { BalanceObserver } from '../modules/billing/ledger.js';
import type { InvalidationAcks } from '../modules/gateway/invalidation.js';
import type { RowOf } from '../db/rows.js';
import type { StoredEvent } from '../modules/live/entities.js';
import { outboxCtes, outboxRows, queueWebhookDeliveries, WEBHOOK_CHANNEL, WEBHOOK_WAKE } from '../modules/webhooks/outbox.js';

export interface Work {
  em: EntityManager;
  /** The long-lived services the command runs with (for after-commit follow-ups). */
  deps: WorkDeps;
  actorId: string | null;
  emit(orgId: string, event: OrgEvent, opts?: { store?: boolean }): void;
  audit(orgId: string, action: string, target: { type: string; id?: string | null }, before?: object | null, after?: object | null): void;
  email(to: string, subject: string, text: string): void;
  afterCommit(fn: () => void | Promise<void>): void;
}

/** What a unit of work runs with: a subset of Services (server/services.ts), built by createServices. */
export interface WorkDeps {
  orm: MikroORM;
  bus: EventBus;
  mailer: Mailer;
  /** Told of every balance change in its transaction (budget alerts, auto top-up). */
  balanceObservers: readonly BalanceObserver[];
  /** Where committed gateway cache invalidations wait for every instance to confirm. */
  invalidation: InvalidationAcks;
  /** Where after-commit failures are reported (the change itself is committed by then). */
  log: FailureLog;
}

/** What most domain code needs of a transaction: raw SQL with `?` parameters. */
export type Sql = Pick<EntityManager, 'execute'>;
/** A unit of work over plain SQL: what runSqlCommand gives, and all that SQL-only domain code asks for. */
export type SqlWork = Omit<Work, 'em'> & { em: Sql };

type PendingEvent = { orgId: string; event: OrgEvent; store: boolean };

function eventLockKey(orgId: string): string {
  return `org-events:${orgId}`;
}

/**
 * Stores one event and NOTIFYs it in one statement (taking the organization's event lock first when
 * `lockOrgId` is set: the CTE's data dependency orders the lock before the id is drawn).
 * Returns the new event's id.
 */
async function storeAndNotify(tx: Sql, bus: EventBus, event: OrgEvent, busEvent: BusEvent, lockOrgId: string | null): Promise<string> {
  const payload = bus.notifyPayloadSql(busEvent, 'stored.id::text');
  const rows = await tx.execute<RowOf<typeof StoredEvent, 'id'>[]>(
    `with ${lockOrgId ? 'lock as (select pg_advisory_xact_lock(hashtextextended(?, 0))),' : ''}
     stored as (insert into org_event (org_id, type, payload, actor_id, created_at)
                select ?::uuid, ?, ?::jsonb, ?::uuid, ?::timestamptz ${lockOrgId ? 'from lock' : ''} returning id)
     select stored.id::text as id, pg_notify(?, ${payload.sql}) from stored`,
    [
      ...(lockOrgId ? [eventLockKey(lockOrgId)] : []),
      busEvent.orgId,
      event.type,
      JSON.stringify(event),
      busEvent.actorId,
      busEvent.at,
      ORG_CHANNEL,
      ...payload.params,
    ],
  );
  return String(rows[0]!.id);
}

/**
 * Stores and NOTIFYs a command's events inside its transaction.
 * Event ids must become visible in id order per organization, or a subscriber that has seen id 11
 * would skip a late-committing id 10 (and replay from lastEventId would miss it). Holding a
 * per-organization lock from id allocation to commit makes commit order equal id order. Nearly
 * every command stores at most one event: then one statement takes the lock, stores the event,
 * NOTIFYs it and the command's ephemeral events, and queues the webhook outbox (publishInOne).
 */
async function publishEvents(tx: Sql, bus: EventBus, actorId: string | null, events: PendingEvent[]): Promise<void> {
  if (events.length === 0) return;
  const now = new Date();
  let storedCount = 0;
  for (const e of events) if (e.store) storedCount++;
  if (storedCount <= 1) return publishInOne(tx, bus, actorId, events, now.toISOString());
  const storedOrgs = [...new Set(events.filter((e) => e.store).map((e) => e.orgId))].sort();
  let lockWith: string | null = storedOrgs.length === 1 ? storedOrgs[0]! : null;
  if (storedOrgs.length > 1) for (const orgId of storedOrgs) await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [eventLockKey(orgId)]);
  for (const { orgId, event, store } of events) {
    const busEvent: BusEvent = { ...event, orgId, actorId, at: now.toISOString() };
    if (store) {
      busEvent.id = await storeAndNotify(tx, bus, event, busEvent, lockWith);
      lockWith = null;
    } else {
      const payload = bus.encodeForNotify(busEvent);
      if (payload !== null) await tx.execute('select pg_notify(?, ?)', [ORG_CHANNEL, payload]);
    }
  }
  // The webhook outbox, under the same organization lock: an endpoint's deliveries in commit order.
  await queueWebhookDeliveries(tx, events.map((e) => ({ orgId: e.orgId, event: e.event, at: now.toISOString() })));
}

/**
 * publishEvents for at most one stored event, in ONE statement (a round trip, and a wake-up of the
 * database and of this process, per command instead of one per event plus one for the outbox):
 * - `lock`, then `stored`: with a stored event, the organization's event lock, then the event's row
 *   (its data dependency on the lock draws the id under it);
 * - `notes`: every NOTIFY on the organization channel, in the order the events were emitted (the
 *   stored one's payload carries its new id);
 * - the webhook outbox's CTEs, joined to `lock` when there is one, so deliveries get their `seq`
 *   under the same lock, as queueWebhookDeliveries' do after storeAndNotify.
 */
async function publishInOne(tx: Sql, bus: EventBus, actorId: string | null, events: PendingEvent[], at: string): Promise<void> {
  const ctes: string[] = [];
  const params: unknown[] = [];
  const stored = events.find((e) => e.store);
  if (stored) {
    ctes.push(
      'lock as (select pg_advisory_xact_lock(hashtextextended(?, 0)))',
      'stored as (insert into org_event (org_id, type, payload, actor_id, created_at) select ?::uuid, ?, ?::jsonb, ?::uuid, ?::timestamptz from lock returning id)',
    );
    params.push(eventLockKey(stored.orgId), stored.orgId, stored.event.type, JSON.stringify(stored.event), actorId, at);
  }
  const ephemeral: { ord: number; payload: string }[] = [];
  let note: { ord: number; sql: string; params: unknown[] } | null = null;
  for (let ord = 0; ord < events.length; ord++) {
    const { orgId, event, store } = events[ord]!;
    const busEvent: BusEvent = { ...event, orgId, actorId, at };
    if (store) note = { ord, ...bus.notifyPayloadSql(busEvent, 'stored.id::text') };
    else {
      const payload = bus.encodeForNotify(busEvent);
      if (payload !== null) ephemeral.push({ ord, payload });
    }
  }
  const selects: string[] = [];
  if (note || ephemeral.length > 0) {
    ctes.push(`notes as (select pg_notify(?, n.payload) from (
        select ord, payload from jsonb_to_recordset(?::jsonb) as x(ord int, payload text)
        ${note ? `union all select ?::int, ${note.sql} from stored` : ''}
        order by 1) n)`);
    params.push(ORG_CHANNEL, JSON.stringify(ephemeral));
    if (note) params.push(note.ord, ...note.params);
    selects.push('(select count(*) from notes) as notified');
  }
  const outbox = outboxRows(events.map((e) => ({ orgId: e.orgId, event: e.event, at })));
  if (outbox.length > 0) {
    ctes.push(outboxCtes(stored ? 'lock' : null));
    params.push(JSON.stringify(outbox));
  }
  if (outbox.length > 0) {
    selects.push(`${WEBHOOK_WAKE} as woken`);
    params.push(WEBHOOK_CHANNEL);
  }
  if (selects.length === 0) return;
  await tx.execute(`with ${ctes.join(',\n  ')}\n  select ${selects.join(', ')}`, params);
}

type PendingEmail = { id: string; to: string; subject: string; text: string };

/** After the commit: hand the emails to the mailer, then run the after-commit hooks (best effort). */
async function afterCommitted(deps: WorkDeps, emails: PendingEmail[], after: (() => void | Promise<void>)[]): Promise<void> {
  // The outbox row is committed: a failed hand-over is retried by the email sweep job.
  for (const m of emails) deps.mailer.deliver(m.id, m.to, m.subject, m.text).catch(failureHandler(deps.log, 'email hand-over', { emailId: m.id }));
  for (const f of after) {
    try {
      await f();
    } catch (err) {
      // After-commit hooks are best effort (the change itself is committed), but never silent.
      reportFailure(deps.log, 'after-commit hook', err);
    }
  }
}

export async function runCommand<T>(deps: WorkDeps, actorId: string | null, fn: (work: Work) => Promise<T>, em?: EntityManager): Promise<T> {
  const events: PendingEvent[] = [];
  const emails: PendingEmail[] = [];
  const after: (() => void | Promise<void>)[] = [];
  const base = em ?? deps.orm.em.fork();

  const result = await base.transactional(async (tx) => {
    events.length = 0;
    emails.length = 0;
    after.length = 0;
    const audits: object[] = [];
    const work: Work = {
      em: tx,
      deps,
      actorId,
      emit: (orgId, event, opts) => events.push({ orgId, event, store: opts?.store ?? true }),
      audit: (orgId, action, target, before, after) =>
        audits.push({ orgId, actorId, action, targetType: target.type, targetId: target.id ?? null, before: before ?? null, after: after ?? null, createdAt: new Date() }),
      email: (to, subject, text) => emails.push({ id: randomUUID(), to, subject, text }),
      afterCommit: (f) => after.push(f),
    };
    const value = await fn(work);
    for (const a of audits) tx.create(AuditEntry, a as never);
    for (const m of emails) tx.create(OutboxEmail, { id: m.id, to: m.to, subject: m.subject, text: m.text, status: 'pending', createdAt: new Date(), error: null, sentAt: null });
    // One flush for the change itself, its audit entries and its emails.
    await tx.flush();
    await publishEvents(tx, deps.bus, actorId, events);
    return value;
  });

  await afterCommitted(deps, emails, after);
  return result;
}

const statements = new Map<string, { name?: string; text: string }>();
const MAX_NAMED_STATEMENTS = 200;

/**
 * `?` placeholders become `$n`; the statement gets a name (so each connection parses and plans it
 * once, not per call) unless too many distinct texts were seen, which only generated SQL would do.
 */
function preparedStatement(sql: string): { name?: string; text: string } {
  let prepared = statements.get(sql);
  if (!prepared) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    prepared = statements.size < MAX_NAMED_STATEMENTS ? { name: `uow_${statements.size}`, text } : { text };
    if (prepared.name) statements.set(sql, prepared);
  }
  return prepared;
}

/**
 * runCommand on a plain `pg` connection, for hot paths whose work is SQL only (the usage meter's
 * group commit): the same unit of work (events stored and NOTIFYed in the transaction, audit entries,
 * emails in the outbox, after-commit hooks) without the ORM's per-transaction and per-query cost.
 * `?` placeholders, as with EntityManager.execute.
 */
export async function runSqlCommand<T>(deps: WorkDeps, pool: pg.Pool, actorId: string | null, fn: (work: SqlWork) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const events: PendingEvent[] = [];
  const emails: PendingEmail[] = [];
  const after: (() => void | Promise<void>)[] = [];
  const audits: { org_id: string; actor_id: string | null; action: string; target_type: string; target_id: string | null; before: object | null; after: object | null; created_at: string }[] = [];
  const tx: Sql = {
    execute: (async (text: string, params: unknown[] = []) => (await client.query({ ...preparedStatement(text), values: params })).rows) as Sql['execute'],
  };
  const work: SqlWork = {
    em: tx,
    deps,
    actorId,
    emit: (orgId, event, opts) => events.push({ orgId, event, store: opts?.store ?? true }),
    audit: (orgId, action, target, before, afterState) =>
      audits.push({ org_id: orgId, actor_id: actorId, action, target_type: target.type, target_id: target.id ?? null, before: before ?? null, after: afterState ?? null, created_at: new Date().toISOString() }),
    email: (to, subject, text) => emails.push({ id: randomUUID(), to, subject, text }),
    afterCommit: (f) => after.push(f),
  };
  let broken = false;
  let value: T;
  try {
    await client.query('begin');
    value = await fn(work);
    if (audits.length > 0) {
      await tx.execute(
        `insert into audit_log (org_id, actor_id, action, target_type, target_id, before, after, created_at)
         select org_id, actor_id, action, target_type, target_id, before, after, created_at from jsonb_to_recordset(?::jsonb)
           as r(org_id uuid, actor_id uuid, action varchar, target_type varchar, target_id varchar, before jsonb, after jsonb, created_at timestamptz)`,
        [JSON.stringify(audits)],
      );
    }
    if (emails.length > 0) {
      await tx.execute(
        `insert into email_outbox (id, recipient, subject, body, status, created_at)
         select id, recipient, subject, body, 'pending', now() from jsonb_to_recordset(?::jsonb) as r(id uuid, recipient varchar, subject varchar, body text)`,
        [JSON.stringify(emails.map((m) => ({ id: m.id, recipient: m.to, subject: m.subject, body: m.text })))],
      );
    }
    await publishEvents(tx, deps.bus, actorId, events);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
  await afterCommitted(deps, emails, after);
  return value;
}
