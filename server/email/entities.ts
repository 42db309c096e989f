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
  },
});
