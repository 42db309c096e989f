import type { Sql } from '../../events/unit-of-work.js';
import type { RowOf } from '../../db/rows.js';
import type { User } from '../auth/entities.js';

/** Owners' emails plus the billing email, without duplicates: who hears about money. */
export async function ownerEmails(em: Sql, orgId: string): Promise<string[]> {
  const rows = await em.execute<RowOf<typeof User, 'email'>[]>(
    `select u.email from membership m join app_user u on u.id = m.user_id where m.org_id = ? and m.role = 'owner'
     union select billing_email as email from organization where id = ? and billing_email is not null`,
    [orgId, orgId],
  );
  return [...new Set(rows.map((r) => r.email.toLowerCase()))];
}
