import { defineEntity, p } from '@mikro-orm/postgresql';

/** Organization events kept for replay (`lastEventId`); pruned after the retention window. */
export const StoredEvent = defineEntity({
  name: 'StoredEvent',
  tableName: 'org_event',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    orgId: p.uuid(),
    type: p.string(),
    payload: p.json<Record<string, unknown>>(),
    actorId: p.uuid().nullable(),
    createdAt: p.datetime(),
  },
});
