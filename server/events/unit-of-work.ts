/**
 * One unit of work per command: the domain change, its audit entries, its events and its emails
 * commit together. Events reach subscribers, on this instance and every other, through the NOTIFY
 * issued inside the same transaction: only if and when it commits, in commit order (bus.ts).
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { OrgEvent } from '../../shared/events.js';
import { AuditEntry } from '../modules/audit/entities.js';
import { OutboxEmail } from '../email/entities.js';
import { ORG_CHANNEL, type BusEvent, type EventBus } from './bus.js';
import type { Mailer } from '../email/mailer.js';

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

export interface WorkDeps { orm: MikroORM; bus: EventBus; mailer: Mailer }

function eventLockKey(orgId: string): string {
  return `org-events:${orgId}`;
}

/**
 * Stores one event and NOTIFYs it in one statement (taking the organization's event lock first when
 * `lockOrgId` is set: the CTE's data dependency orders the lock before the id is drawn).
 * Returns the new event's id.
 */
async function storeAndNotify(tx: EntityManager, bus: EventBus, event: OrgEvent, busEvent: BusEvent, lockOrgId: string | null): Promise<string> {
  const payload = bus.notifyPayloadSql(busEvent, 'stored.id::text');
  const rows = await tx.execute<{ id: string }[]>(
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

export async function runCommand<T>(deps: WorkDeps, actorId: string | null, fn: (work: Work) => Promise<T>, em?: EntityManager): Promise<T> {
  const events: { orgId: string; event: OrgEvent; store: boolean }[] = [];
  const emails: { id: string; to: string; subject: string; text: string }[] = [];
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
    const now = new Date();
    // Event ids must become visible in id order per organization, or a subscriber that has seen
    // id 11 would skip a late-committing id 10 (and replay from lastEventId would miss it). Holding
    // a per-organization lock from id allocation to commit makes commit order equal id order.
    // Nearly every command touches one organization: then the statement storing its first event
    // takes the lock itself, saving a round trip.
    const storedOrgs = [...new Set(events.filter((e) => e.store).map((e) => e.orgId))].sort();
    let lockWith: string | null = storedOrgs.length === 1 ? storedOrgs[0]! : null;
    if (storedOrgs.length > 1) for (const orgId of storedOrgs) await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [eventLockKey(orgId)]);
    for (const { orgId, event, store } of events) {
      const busEvent: BusEvent = { ...event, orgId, actorId, at: now.toISOString() };
      if (store) {
        busEvent.id = await storeAndNotify(tx, deps.bus, event, busEvent, lockWith);
        lockWith = null;
      } else {
        const payload = deps.bus.encodeForNotify(busEvent);
        if (payload !== null) await tx.execute('select pg_notify(?, ?)', [ORG_CHANNEL, payload]);
      }
    }
    return value;
  });

  for (const m of emails) void deps.mailer.deliver(m.id, m.to, m.subject, m.text);
  for (const f of after) {
    try {
      await f();
    } catch {
      // after-commit hooks are best effort; the change itself is committed
    }
  }
  return result;
}
