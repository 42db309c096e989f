/** Objects of the local test-payment provider, kept in PostgreSQL so they survive restarts. */
import type { MikroORM } from '@mikro-orm/postgresql';
import { randomBytes } from 'node:crypto';

export type StripeObject = Record<string, any> & { id: string; object: string };

export function newId(prefix: string): string {
  return `${prefix}_test_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
}

export class FakeStripeStore {
  constructor(private readonly orm: MikroORM) {}

  async get<T extends StripeObject = StripeObject>(id: string): Promise<T | null> {
    const rows = await this.orm.em.fork().execute<{ data: T }[]>('select data from test_stripe_object where id = ?', [id]);
    return rows[0]?.data ?? null;
  }

  async put<T extends StripeObject>(obj: T): Promise<T> {
    await this.orm.em
      .fork()
      .execute(
        `insert into test_stripe_object (id, type, data) values (?, ?, ?::jsonb)
         on conflict (id) do update set data = excluded.data`,
        [obj.id, obj.object, JSON.stringify(obj)],
      );
    return obj;
  }

  /** Objects of one type whose data contains `match` (jsonb containment). */
  async find<T extends StripeObject = StripeObject>(type: string, match: Record<string, unknown>): Promise<T[]> {
    const rows = await this.orm.em
      .fork()
      .execute<{ data: T }[]>('select data from test_stripe_object where type = ? and data @> ?::jsonb order by created_at', [type, JSON.stringify(match)]);
    return rows.map((r) => r.data);
  }

  /** Stores an idempotent response once; later calls with the same key get the first one. */
  async remember(key: string, produce: () => Promise<{ status: number; body: unknown }>): Promise<{ status: number; body: unknown }> {
    const id = `idem_${key}`.slice(0, 255);
    const existing = await this.get<StripeObject & { status: number; body: unknown }>(id);
    if (existing) return { status: existing.status, body: existing.body };
    const result = await produce();
    await this.put({ id, object: 'idempotency_record', status: result.status, body: result.body });
    return result;
  }
}
