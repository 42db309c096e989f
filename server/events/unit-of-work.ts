/**
 * One unit of work per command: the domain change, its audit entries, its events and its emails
 * commit together. Events reach this instance's subscribers only after the commit; other
 * instances get them through the NOTIFY issued inside the same transaction.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { OrgEvent } from '../../shared/events.js';
import { AuditEntry } from '../modules/audit/entities.js';
import { StoredEvent } from '../modules/live/entities.js';
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

export async function runCommand<T>(deps: WorkDeps, actorId: string | null, fn: (work: Work) => Promise<T>, em?: EntityManager): Promise<T> {
  const events: { orgId: string; event: OrgEvent; store: boolean }[] = [];
  const emails: { id: string; to: string; subject: string; text: string }[] = [];
  const after: (() => void | Promise<void>)[] = [];
  const delivered: BusEvent[] = [];
  const base = em ?? deps.orm.em.fork();

  const result = await base.transactional(async (tx) => {
    events.length = 0;
    emails.length = 0;
    after.length = 0;
    delivered.length = 0;
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
    await tx.flush();
    for (const a of audits) tx.create(AuditEntry, a as never);
    for (const m of emails) tx.create(OutboxEmail, { id: m.id, to: m.to, subject: m.subject, text: m.text, status: 'pending', createdAt: new Date(), error: null, sentAt: null });
    const now = new Date();
    // Event ids must become visible in id order per organization, or a subscriber that has seen
    // id 11 would skip a late-committing id 10 (and replay from lastEventId would miss it). Holding
    // a per-organization lock from id allocation to commit makes commit order equal id order.
    const storedOrgs = [...new Set(events.filter((e) => e.store).map((e) => e.orgId))].sort();
    for (const orgId of storedOrgs) await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`org-events:${orgId}`]);
    const rows = events.map((e) =>
      e.store ? tx.create(StoredEvent, { orgId: e.orgId, type: e.event.type, payload: e.event as unknown as Record<string, unknown>, actorId, createdAt: now }) : null,
    );
    await tx.flush();
    for (let i = 0; i < events.length; i++) {
      const { orgId, event } = events[i]!;
      const busEvent: BusEvent = { ...event, orgId, actorId, at: now.toISOString(), ...(rows[i] ? { id: rows[i]!.id } : {}) };
      delivered.push(busEvent);
      await tx.execute('select pg_notify(?, ?)', [ORG_CHANNEL, deps.bus.encodeForNotify(busEvent)]);
    }
    return value;
  });

  for (const e of delivered) deps.bus.deliverLocal(e);
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
