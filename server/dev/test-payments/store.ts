/** Objects of the local test-payment provider, kept in PostgreSQL so they survive restarts. */
import type { MikroORM } from '@mikro-orm/postgresql';
import { randomBytes } from 'node:crypto';
import type { RowOf } from '../../db/rows.js';
import type { TestStripeObject } from './entities.js';

export type StripeObject = Record<string, any> & { id: string; object: string };

export function newId(prefix: string): string {
  return `${prefix}_test_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
}

export class FakeStripeStore {
  private readonly chains = new Map<string, Promise<void>>();

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

  /**
   * Runs `fn` after every earlier call with the same key has finished (in this process). Waiters
   * hold no database connection: a check-then-act sequence (an idempotency record, a charge's
   * refundable remainder) runs alone per key. Across processes sharing the database, the steps that
   * matter are atomic statements (`claim`, `addRefunded`).
   */
  async serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = previous.then(() => mine);
    this.chains.set(key, chain);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.chains.get(key) === chain) this.chains.delete(key);
    }
  }

  /** Inserts `obj` only if no object has its id: true when this call created it (an atomic claim). */
  async claim(obj: StripeObject): Promise<boolean> {
    const rows = await this.orm.em
      .fork()
      .execute<RowOf<typeof TestStripeObject, 'id'>[]>(`insert into test_stripe_object (id, type, data) values (?, ?, ?::jsonb) on conflict (id) do nothing returning id`, [obj.id, obj.object, JSON.stringify(obj)]);
    return rows.length === 1;
  }

  /**
   * Adds `amount` to a charge's refunded total if it stays within the charge (one atomic statement,
   * so parallel refunds can never refund more than was paid). Returns the charge, or null if refused.
   */
  async addRefunded<T extends StripeObject = StripeObject>(chargeId: string, amount: number): Promise<T | null> {
    const rows = await this.orm.em.fork().execute<{ data: T }[]>(
      `update test_stripe_object
          set data = jsonb_set(jsonb_set(data, '{amount_refunded}', to_jsonb((data->>'amount_refunded')::bigint + ?::bigint)),
                               '{refunded}', to_jsonb((data->>'amount_refunded')::bigint + ?::bigint = (data->>'amount')::bigint))
        where id = ? and type = 'charge' and (data->>'amount')::bigint - (data->>'amount_refunded')::bigint >= ?::bigint
        returning data`,
      [amount, amount, chargeId, amount],
    );
    return rows[0]?.data ?? null;
  }

  /**
   * Stores an idempotent response once; later or parallel calls with the same key get the first
   * one. The key is claimed atomically before the work runs, so two parallel calls never both run it.
   */
  async remember(key: string, produce: () => Promise<{ status: number; body: unknown }>): Promise<{ status: number; body: unknown }> {
    const id = `idem_${key}`.slice(0, 255);
    return this.serialized(id, async () => {
      type Record = StripeObject & { status: number | null; body: unknown };
      for (const deadline = Date.now() + 30_000; ; ) {
        if (await this.claim({ id, object: 'idempotency_record', status: null, body: null })) break;
        const existing = await this.get<Record>(id);
        if (existing && existing.status !== null) return { status: existing.status, body: existing.body };
        // Another process is producing it.
        if (Date.now() > deadline) return { status: 409, body: { error: { type: 'idempotency_error', message: 'A request with this idempotency key is still being processed.' } } };
        await new Promise((r) => setTimeout(r, 20));
      }
      try {
        const result = await produce();
        await this.put({ id, object: 'idempotency_record', status: result.status, body: result.body });
        return result;
      } catch (err) {
        await this.orm.em.fork().execute('delete from test_stripe_object where id = ?', [id]);
        throw err;
      }
    });
  }
}
