import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';

/** Organization events kept for replay (`lastEventId`); pruned after the retention window. */
export const StoredEvent = defineEntity({
  name: 'StoredEvent',
  tableName: 'org_event',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    orgId: references(Organization, 'org_id').deleteRule('cascade'),
    type: p.string(),
    payload: p.json<Record<string, unknown>>(),
    /** Who caused it (kept as a plain id: events outlive nothing, they are pruned after 48 hours). */
    actorId: p.uuid().nullable(),
    createdAt: p.datetime().index(),
  },
  indexes: [{ properties: ['orgId', 'id'] }],
});
export type StoredEventEntity = InferEntity<typeof StoredEvent>;

/** Who is looking at which organization now, per WebSocket connection; rows expire by `seenAt`. */
export const Presence = defineEntity({
  name: 'Presence',
  tableName: 'presence',
  properties: {
    orgId: references(Organization, 'org_id').deleteRule('cascade').primary(),
    connectionId: p.string().length(100).primary(),
    userId: references(User, 'user_id').deleteRule('cascade'),
    page: p.string().length(100),
    seenAt: p.datetime(),
  },
});
export type PresenceEntity = InferEntity<typeof Presence>;
