import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

export const OutboxEmail = defineEntity({
  name: 'OutboxEmail',
  tableName: 'email_outbox',
  properties: {
    id: p.uuid().primary(),
    to: p.string().fieldName('recipient'),
    subject: p.string(),
    text: p.text().fieldName('body'),
    status: p.enum(['pending', 'sent', 'logged', 'failed'] as const),
    error: p.text().nullable(),
    createdAt: p.datetime(),
    sentAt: p.datetime().nullable(),
    /** Failed sends so far; the retry job gives up after 6. */
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime().nullable(),
  },
  indexes: [
    {
      name: 'email_outbox_pending_index',
      expression: `create index "email_outbox_pending_index" on "email_outbox" ("created_at") where "status" = 'pending'`,
    },
  ],
});
export type OutboxEmailEntity = InferEntity<typeof OutboxEmail>;
