/**
 * Spend limits that hold exactly on any number of instances, without a shared-row update per call
 * (issue #12; docs/billing.md "Reservations and leases").
 *
 * Every limit is a counter row (spend_counter: scope, period start) with what its period has spent
 * and what gateway instances hold leased. An instance leases a slice of a limit in one short
 * transaction (capacity = limit - spent - leased by every instance; the balance: credits - leased)
 * and then reserves calls against its lease in memory. A call's reservation settles to its exact
 * cost when it finishes; the usage meter turns that cost from leased into spent in the transaction
 * that records the call (one aggregate statement per batch, see commitSpend). What a lease did not
 * use goes back after LEASE_IDLE_MS without use. A lease that runs dry takes another; when the
 * counter has no capacity left for the call, the limit is reached and the call is refused before it
 * costs anything.
 *
 * Dead instances: each lease row has an expiry (GATEWAY_LEASE_TTL_MS, 60 s by default) that its
 * instance pushes forward every sixth of it; any instance leasing the same limit first reclaims
 * expired leases (a crashed instance's leases come back after the TTL). An instance whose last
 * heartbeat is older than TTL - 2 heartbeats heartbeats before it reserves again (and refuses with
 * the database error when that fails): it never reserves from a lease that may have been reclaimed.
 *
 * Records the meter gives up on (forfeit): their costs were never committed, so what they took from
 * a lease is unused again (the logs and counters both lack them) and goes back like any other.
 *
 * Lock order (no deadlocks with the meter): organization row (balance leases only, FOR NO KEY
 * UPDATE, as the meter's deduction), then lease rows, then the counter row.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { periodEnd, type LimitPeriod } from '../../../shared/limits.js';
import type { Sql } from '../../events/unit-of-work.js';
import { handlePoolErrors, isTransactionConflict } from '../../db/pg-errors.js';
import { reportFailure } from '../../observability/failures.js';
import type { Services } from '../../services.js';
import type { LimitScope } from '../../../shared/events.js';

/** The default lease expiry (config gateway.leaseTtlMs); heartbeats every sixth of the TTL. */
export const LEASE_TTL_MS = 60_000;
/** A lease unused this long gives back what it holds. */
const LEASE_IDLE_MS = 2_000;
const SWEEP_MS = 1_000;
/** A limit found reached is asked again after this long at the earliest. */
const RECHECK_MS = 250;

/** What a limit is: its counter, its amount (null: the organization's balance), how it is named in refusals. */
export interface LimitSpec {
  kind: 'balance' | 'key' | 'member' | 'day' | 'month' | 'slots';
  /** Counter id: `key:<id>`, `member:<org>:<user>`, `day:<org>`, `month:<org>`, `balance:<org>`, `slots:<org>`. */
  scope: string;
  orgId: string;
  periodStart: Date;
  period: LimitPeriod | null;
  /** Nano-dollars (slots: calls); null for the balance (the organization's credits). */
  limit: bigint | null;
  /** For refusals: "this API key's daily spend limit of $5.00". */
  label: string;
  /** For alerts (observeSpend): which limit and whose. */
  alert: { scope: LimitScope; subjectId: string } | null;
}

/** One part of a settled call's cost, for the usage meter: spent on `scope`, `fromLease` of it out of lease `leaseId`. */
export interface SpendCharge {
  leaseId: string;
  scope: string;
  periodStart: Date;
  orgId: string;
  spent: bigint;
  fromLease: bigint;
  /** For observeSpend. */
  limit: bigint | null;
  period: LimitPeriod | null;
  alert: LimitSpec['alert'];
}

export interface Refusal {
  spec: LimitSpec;
  /** What is left of the limit for calls (nano-dollars; slots for the concurrency cap). */
  left: bigint;
  resetsAt: Date | null;
}

class Lease {
  readonly id = randomUUID();
  /** What our lease row holds (acquired, minus returned and committed). */
  granted = 0n;
  /** Free to reserve: granted minus reservations held minus costs settled and not yet committed. */
  available = 0n;
  acquiring: Promise<void> | null = null;
  /** A give-back to the counter in flight (what it gives back is no longer ours, not yet the counter's). */
  returning: Promise<unknown> | null = null;
  lastUsedAt = 0;
  /** Takes no new reservations (the limit changed, or the lease row is gone). */
  retired = false;
  /** The row was reclaimed: nothing to give back. */
  dead = false;
  /** Capacity left at the counter after our last acquisition attempt, and whether that attempt found too little. */
  lastCapacity = 0n;
  exhausted = false;
  checkedAt = 0;
  constructor(readonly spec: LimitSpec) {}
}

/** A call's hold on one lease. */
interface Piece {
  lease: Lease;
  amount: bigint;
}

/** What one call holds across its limits: released, or settled to the exact cost, once. */
export class LimitHold {
  private open = true;
  constructor(
    private readonly engine: SpendLimits,
    private readonly pieces: Piece[],
  ) {}

  release(): void {
    if (!this.open) return;
    this.open = false;
    for (const p of this.pieces) this.engine.giveBack(p.lease, p.amount);
  }

  /** Settles to `cost` (nano-dollars) on every limit held: returns the charges the usage meter commits. */
  settle(cost: bigint): SpendCharge[] {
    if (!this.open) return [];
    this.open = false;
    const charges: SpendCharge[] = [];
    for (const { lease, amount } of this.pieces) {
      let fromLease = cost < amount ? cost : amount;
      if (cost > amount) {
        // Cost above the estimate (a provider counted more prompt tokens): taken from the lease if it can.
        const extra = cost - amount;
        const take = lease.available > 0n ? (lease.available < extra ? lease.available : extra) : 0n;
        lease.available -= take;
        fromLease += take;
      }
      this.engine.giveBack(lease, amount - (fromLease < amount ? fromLease : amount));
      const s = lease.spec;
      if (cost > 0n) charges.push({ leaseId: lease.id, scope: s.scope, periodStart: s.periodStart, orgId: s.orgId, spent: cost, fromLease, limit: s.limit, period: s.period, alert: s.alert });
      else if (fromLease > 0n) charges.push({ leaseId: lease.id, scope: s.scope, periodStart: s.periodStart, orgId: s.orgId, spent: 0n, fromLease, limit: s.limit, period: s.period, alert: s.alert });
    }
    return charges;
  }
}

/** A slot in the organization's cap on calls in flight; released when the call finishes. */
export class SlotHold {
  private open = true;
  constructor(
    private readonly engine: SpendLimits,
    private readonly lease: Lease,
  ) {}
  release(): void {
    if (!this.open) return;
    this.open = false;
    this.engine.releaseSlot(this.lease);
  }
}

const leaseKey = (s: LimitSpec) => `${s.scope}|${s.periodStart.getTime()}`;

const COUNTER_ROW = `insert into spend_counter (scope, period_start, org_id) values ($1, $2, $3) on conflict (scope, period_start) do nothing`;
const RECLAIM = `with dead as (delete from spend_lease where id in (select id from spend_lease where scope = $1 and period_start = $2 and expires_at < now() and id <> $3 order by id for update) returning amount_nanos)
  update spend_counter set leased_nanos = leased_nanos - coalesce((select sum(amount_nanos) from dead), 0)
   where scope = $1 and period_start = $2 returning spent_nanos::text as spent, leased_nanos::text as leased`;
const GRANT_COUNTER = `update spend_counter set leased_nanos = leased_nanos + $3 where scope = $1 and period_start = $2`;
const GRANT_LEASE = `insert into spend_lease (id, scope, period_start, org_id, amount_nanos, expires_at) values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
  on conflict (id) do update set amount_nanos = spend_lease.amount_nanos + excluded.amount_nanos, expires_at = excluded.expires_at`;
const RETURN = `with l as (update spend_lease set amount_nanos = amount_nanos - $2 where id = $1 and amount_nanos >= $2 returning scope, period_start)
  update spend_counter c set leased_nanos = c.leased_nanos - $2 from l where c.scope = l.scope and c.period_start = l.period_start`;
const HEARTBEAT = `update spend_lease set expires_at = now() + make_interval(secs => $2)
  where id in (select id from spend_lease where id = any($1::uuid[]) order by id for update) returning id::text as id`;

/**
 * The meter's part, in its batch transaction: per lease, the committed cost leaves the lease; per
 * counter, it is spent and leaves `leased` (only as far as the lease row still held it: a reclaimed
 * lease was already taken out of `leased`). Returns what each touched counter has spent now.
 */
const COMMIT_SPEND = `with l as (
    update spend_lease s set amount_nanos = s.amount_nanos - r.amount
      from (select * from jsonb_to_recordset(?::jsonb) as x(id uuid, amount bigint) order by id) r
     where s.id = r.id returning s.scope, s.period_start, r.amount),
  ld as (select scope, period_start, sum(amount) as amount from l group by 1, 2)
  insert into spend_counter as c (scope, period_start, org_id, spent_nanos, leased_nanos)
  select r.scope, r.period_start, r.org_id, r.spent, 0 from jsonb_to_recordset(?::jsonb) as r(scope varchar, period_start timestamptz, org_id uuid, spent bigint)
   order by 1, 2
  on conflict (scope, period_start) do update set spent_nanos = c.spent_nanos + excluded.spent_nanos,
    leased_nanos = c.leased_nanos - coalesce((select ld.amount from ld where ld.scope = excluded.scope and ld.period_start = excluded.period_start), 0)
  returning c.scope, c.period_start, c.spent_nanos::text as spent`;

/** The aggregate of a batch's charges, as commitSpend writes them. */
export interface SpendTotals {
  leases: Map<string, bigint>;
  counters: Map<string, { scope: string; periodStart: Date; orgId: string; spent: bigint; limit: bigint | null; period: LimitPeriod | null; alert: LimitSpec['alert'] }>;
}

export function spendTotals(charges: Iterable<SpendCharge>): SpendTotals {
  const leases = new Map<string, bigint>();
  const counters: SpendTotals['counters'] = new Map();
  for (const c of charges) {
    if (c.fromLease > 0n) leases.set(c.leaseId, (leases.get(c.leaseId) ?? 0n) + c.fromLease);
    const k = `${c.scope}|${c.periodStart.getTime()}`;
    const t = counters.get(k);
    if (t) t.spent += c.spent;
    else counters.set(k, { scope: c.scope, periodStart: c.periodStart, orgId: c.orgId, spent: c.spent, limit: c.limit, period: c.period, alert: c.alert });
  }
  return { leases, counters };
}

/** Writes a batch's spend (see COMMIT_SPEND); returns each counter's spent after it, by `scope|periodStart ms`. */
export async function commitSpend(sql: Sql, totals: SpendTotals): Promise<Map<string, bigint>> {
  if (totals.counters.size === 0) return new Map();
  const leases = [...totals.leases].map(([id, amount]) => ({ id, amount: amount.toString() }));
  const counters = [...totals.counters.values()].map((c) => ({ scope: c.scope, period_start: c.periodStart.toISOString(), org_id: c.orgId, spent: c.spent.toString() }));
  const rows = await sql.execute<{ scope: string; period_start: Date | string; spent: string }[]>(COMMIT_SPEND, [JSON.stringify(leases), JSON.stringify(counters)]);
  return new Map(rows.map((r) => [`${r.scope}|${new Date(r.period_start).getTime()}`, BigInt(r.spent)]));
}

export class SpendLimits {
  private readonly leases = new Map<string, Lease>();
  /** Leases no longer taking reservations whose rows still hold something (settles in flight). */
  private readonly retired = new Set<Lease>();
  private readonly pool: pg.Pool;
  private readonly timer: NodeJS.Timeout;
  private lastHeartbeatOk = Date.now();
  private beating: Promise<void> | null = null;
  private sweeping = false;
  private closed = false;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly services: Services,
    databaseUrl: string,
  ) {
    this.ttlMs = services.config.gateway.leaseTtlMs ?? LEASE_TTL_MS;
    this.heartbeatMs = Math.floor(this.ttlMs / 6);
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 4, idleTimeoutMillis: 60_000, application_name: 'spend-limits' });
    handlePoolErrors(this.pool, services.log, 'spend limits');
    let lastBeat = Date.now();
    this.timer = setInterval(
      () => {
        if (this.sweeping || this.closed) return;
        this.sweeping = true;
        const beat = Date.now() - lastBeat >= this.heartbeatMs;
        if (beat) lastBeat = Date.now();
        (beat ? this.beat() : Promise.resolve())
          .then(() => this.sweep(false))
          .catch((err: unknown) => reportFailure(services.log, 'spend limits: lease upkeep', err))
          .finally(() => (this.sweeping = false));
      },
      Math.min(SWEEP_MS, this.heartbeatMs),
    );
    this.timer.unref();
  }

  /** Leases are trusted while heartbeats succeed (a margin before their rows could be reclaimed). */
  private get leasesValid(): boolean {
    return Date.now() - this.lastHeartbeatOk < this.ttlMs - 2 * this.heartbeatMs;
  }

  /** One heartbeat at a time (the timer's, or a reservation's that found the last one too old). */
  private beat(): Promise<void> {
    return (this.beating ??= this.heartbeat().finally(() => (this.beating = null)));
  }

  private leaseFor(spec: LimitSpec): Lease {
    const k = leaseKey(spec);
    let lease = this.leases.get(k);
    if (lease && (lease.dead || lease.spec.limit !== spec.limit)) {
      // The limit's amount changed (or the row is gone): a fresh lease against the new amount.
      this.retire(lease);
      lease = undefined;
    }
    if (!lease) {
      lease = new Lease(spec);
      this.leases.set(k, lease);
    }
    return lease;
  }

  private retire(lease: Lease): void {
    lease.retired = true;
    if (this.leases.get(leaseKey(lease.spec)) === lease) this.leases.delete(leaseKey(lease.spec));
    if (!lease.dead) this.retired.add(lease);
  }

  /** Back into the lease (a released reservation, an unused part of a settled one). */
  giveBack(lease: Lease, amount: bigint): void {
    if (amount <= 0n) return;
    lease.available += amount;
  }

  /**
   * A slot back from a finished call. Once none of this instance's slots is in use, they go back to
   * the counter at once: a cap of a few calls must not stay leased by an instance gone idle while
   * another instance's calls are refused (money leases wait for LEASE_IDLE_MS: no write per call).
   */
  releaseSlot(lease: Lease): void {
    this.giveBack(lease, 1n);
    if (this.closed || lease.dead || lease.acquiring || lease.available < lease.granted) return;
    this.returnUnused(lease).catch((err: unknown) => reportFailure(this.services.log, 'spend limits: giving slots back', err));
  }

  /** Gives back to the counter what `lease` holds unused (one statement; restored if it fails). */
  private async returnUnused(lease: Lease): Promise<void> {
    const x = lease.available;
    if (x <= 0n) return;
    lease.available -= x;
    lease.granted -= x;
    const returning = this.pool.query(RETURN, [lease.id, x.toString()]);
    lease.returning = returning;
    try {
      await returning;
    } catch (err) {
      lease.available += x;
      lease.granted += x;
      throw err;
    } finally {
      if (lease.returning === returning) lease.returning = null;
    }
  }

  /**
   * Reserves `amount` against `spec`, leasing more when this instance's lease has too little. Null
   * when reserved; the refusal (what is left) when the limit cannot take it.
   */
  private async reserveOne(spec: LimitSpec, amount: bigint, slice: (capacity: bigint, need: bigint) => bigint): Promise<Lease | Refusal> {
    for (;;) {
      // Heartbeats fell behind (a stalled timer, a database blip): heartbeat first (a lease found
      // reclaimed meanwhile is dropped, a fresh one is leased); a failure refuses the call.
      if (!this.leasesValid) await this.beat();
      const lease = this.leaseFor(spec);
      lease.lastUsedAt = Date.now();
      if (lease.available >= amount) {
        lease.available -= amount;
        return lease;
      }
      const free = () => (lease.available > 0n ? lease.available : 0n);
      const refusal = (): Refusal => ({ spec, left: clampLeft(lease.lastCapacity + free()), resetsAt: resetsAt(spec) });
      // A limit found reached a moment ago is not asked again for every refused call (a flood of
      // refusals must not become a row update per call).
      if (!lease.acquiring && lease.exhausted && Date.now() - lease.checkedAt < RECHECK_MS && lease.lastCapacity + free() < amount) return refusal();
      if (lease.acquiring) {
        // Another call of this instance is leasing: its answer may cover this one too.
        await lease.acquiring;
        if (lease.exhausted && lease.lastCapacity + free() < amount) return refusal();
        continue;
      }
      // What this instance is giving back reaches the counter first (else a call right after the
      // last slot's release would find it neither here nor there).
      if (lease.returning) {
        await lease.returning.catch(() => {});
        continue;
      }
      lease.acquiring = this.acquire(lease, amount - free(), slice).finally(() => (lease.acquiring = null));
      await lease.acquiring;
      if (lease.exhausted && lease.available < amount) return refusal();
    }
  }

  /** acquireOnce, again after a deadlock or serialization failure (every call waiting on this lease would fail with it). */
  private async acquire(lease: Lease, need: bigint, slice: (capacity: bigint, need: bigint) => bigint): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.acquireOnce(lease, need, slice);
      } catch (err) {
        if (attempt >= 3 || !isTransactionConflict(err)) throw err;
      }
    }
  }

  /** One lease transaction: reclaim dead instances' leases, then take min(capacity, max(need, slice)) if need fits. */
  private async acquireOnce(lease: Lease, need: bigint, slice: (capacity: bigint, need: bigint) => bigint): Promise<void> {
    const s = lease.spec;
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      let credits: bigint | null = null;
      if (s.kind === 'balance') {
        const org = await client.query<{ credits: string }>('select credits_nanos::text as credits from organization where id = $1 for no key update', [s.orgId]);
        credits = org.rows[0] ? BigInt(org.rows[0].credits) : 0n;
      }
      // Our own lease row before the counter (the lock order: the meter commits a batch's spend from
      // this row, then into the counter; granting into the row after the counter deadlocked with it).
      if (lease.granted > 0n) await client.query('select 1 from spend_lease where id = $1 for update', [lease.id]);
      await client.query(COUNTER_ROW, [s.scope, s.periodStart, s.orgId]);
      // Expired leases of other instances come back (ours stays ours: its heartbeat extends it).
      const row = (await client.query<{ spent: string; leased: string }>(RECLAIM, [s.scope, s.periodStart, lease.id])).rows[0]!;
      const capacity = s.kind === 'balance' ? credits! - BigInt(row.leased) : (s.limit ?? 0n) - BigInt(row.spent) - BigInt(row.leased);
      let grant = 0n;
      if (capacity >= need && need > 0n) {
        const wanted = slice(capacity, need);
        grant = wanted > capacity ? capacity : wanted < need ? need : wanted;
        await client.query(GRANT_COUNTER, [s.scope, s.periodStart, grant.toString()]);
        await client.query(GRANT_LEASE, [lease.id, s.scope, s.periodStart, s.orgId, grant.toString(), this.ttlMs / 1000]);
      }
      await client.query('commit');
      lease.lastCapacity = capacity - grant;
      lease.exhausted = grant === 0n;
      lease.checkedAt = Date.now();
      if (grant > 0n) {
        lease.granted += grant;
        lease.available += grant;
      }
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Reserves `amountNanos` on every limit in `specs` (all or nothing): the hold, or the first
   * refusal (what was taken is given back).
   */
  async reserve(specs: LimitSpec[], amountNanos: bigint): Promise<LimitHold | Refusal> {
    const pieces: Piece[] = [];
    try {
      for (const spec of specs) {
        const got = await this.reserveOne(spec, amountNanos, moneySlice);
        if (!(got instanceof Lease)) {
          for (const p of pieces) this.giveBack(p.lease, p.amount);
          return got;
        }
        pieces.push({ lease: got, amount: amountNanos });
      }
    } catch (err) {
      for (const p of pieces) this.giveBack(p.lease, p.amount);
      throw err;
    }
    return new LimitHold(this, pieces);
  }

  /** A slot of the organization's cap on calls in flight, or the refusal. */
  async takeSlot(spec: LimitSpec): Promise<SlotHold | Refusal> {
    const got = await this.reserveOne(spec, 1n, slotSlice);
    return got instanceof Lease ? new SlotHold(this, got) : got;
  }

  /** After the meter committed a batch (once per batch): the committed costs have left our leases' rows. */
  committed(records: readonly { spend?: readonly SpendCharge[] }[]): void {
    for (const [lease, amount] of this.fromLeases(records)) lease.granted -= amount;
  }

  /**
   * Records the meter gave up on (their transaction rolled back): their costs were never committed,
   * so what they took from our leases is still in the rows and unused; it is available again (and
   * goes back to the counter once idle) instead of shrinking the limit until a restart.
   */
  forfeit(records: readonly { spend?: readonly SpendCharge[] }[]): void {
    for (const [lease, amount] of this.fromLeases(records)) if (!lease.dead) this.giveBack(lease, amount);
  }

  /** What `records` took from each of this instance's leases (leases no longer known are skipped). */
  private fromLeases(records: readonly { spend?: readonly SpendCharge[] }[]): [Lease, bigint][] {
    let charges: SpendCharge[] | null = null;
    for (const r of records) if (r.spend && r.spend.length > 0) (charges ??= []).push(...r.spend);
    if (!charges) return [];
    const totals = spendTotals(charges);
    if (totals.leases.size === 0) return [];
    const byId = new Map<string, Lease>();
    for (const l of this.leases.values()) byId.set(l.id, l);
    for (const l of this.retired) byId.set(l.id, l);
    const out: [Lease, bigint][] = [];
    for (const [id, amount] of totals.leases) {
      const lease = byId.get(id);
      if (lease) out.push([lease, amount]);
    }
    return out;
  }

  private async heartbeat(): Promise<void> {
    const all = [...this.leases.values(), ...this.retired].filter((l) => !l.dead && l.granted > 0n);
    if (all.length === 0) {
      this.lastHeartbeatOk = Date.now();
      return;
    }
    const res = await this.pool.query<{ id: string }>(HEARTBEAT, [all.map((l) => l.id), this.ttlMs / 1000]);
    this.lastHeartbeatOk = Date.now();
    const alive = new Set(res.rows.map((r) => r.id));
    for (const l of all) {
      if (alive.has(l.id)) continue;
      // Reclaimed by another instance (we missed heartbeats): nothing of it is ours any more.
      l.dead = true;
      this.retire(l);
      this.retired.delete(l);
    }
  }

  /** Gives back what idle (or, closing, all) leases hold unused; forgets empty retired ones. */
  private async sweep(all: boolean): Promise<void> {
    const now = Date.now();
    const candidates = [...this.leases.values(), ...this.retired];
    for (const lease of candidates) {
      if (lease.acquiring || lease.dead) continue;
      const idle = all || lease.retired || now - lease.lastUsedAt >= LEASE_IDLE_MS;
      if (!idle || lease.available <= 0n) {
        if (idle && lease.granted <= 0n) {
          // Nothing held (a past period, an idle limit): forget it.
          this.retire(lease);
          this.retired.delete(lease);
        }
        continue;
      }
      await this.returnUnused(lease);
      if (lease.retired && lease.granted <= 0n) this.retired.delete(lease);
      else if (!lease.retired && lease.granted <= 0n && now - lease.lastUsedAt >= LEASE_IDLE_MS) {
        // Idle and empty: forget it (a next call leases afresh).
        this.retire(lease);
        this.retired.delete(lease);
      }
    }
    if (all || now % 60_000 < SWEEP_MS) await this.pool.query(`delete from spend_lease where amount_nanos = 0 and expires_at < now()`);
  }

  /** Gives back every unused lease and closes the connections (after the meter drained). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.sweep(true);
    } catch (err) {
      reportFailure(this.services.log, 'spend limits: giving leases back on close', err);
    }
    await this.pool.end();
  }

  /**
   * Tests only: the instance crashes. Heartbeats stop and the connections close without giving
   * anything back; the lease rows stay until they expire and another instance reclaims them.
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.pool.end();
  }
}

const clampLeft = (n: bigint) => (n > 0n ? n : 0n);

export function resetsAt(spec: Pick<LimitSpec, 'period' | 'periodStart'>): Date | null {
  return spec.period ? periodEnd(spec.period, spec.periodStart) : null;
}

/** A money lease: enough for a few such calls, or an eighth of what is left (slices shrink as the limit nears). */
function moneySlice(capacity: bigint, need: bigint): bigint {
  const eighth = capacity / 8n;
  const few = need * 4n;
  return eighth > few ? eighth : few;
}

/** Slots are leased one at a time beyond what this instance already holds (given back once it uses none, see releaseSlot). */
function slotSlice(_capacity: bigint, need: bigint): bigint {
  return need;
}
