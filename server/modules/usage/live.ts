/**
 * Coalesced `usage` live events: committed usage is summed per organization and published at most
 * every `intervalMs` per instance, so a busy organization's dashboard (and a `usage` webhook) gets a
 * few updates a second, not one per request.
 *
 * Under load the event rides in a meter batch's own transaction: the first batch committing once an
 * event is due publishes what was committed before and not yet published, plus its own records
 * (inBatch), so the summary commits, or not, with that batch and costs no transaction of its own.
 * When no batch comes along, a timer publishes the totals in a small transaction (flush).
 */
import { nanosToDecimal } from '../../../shared/money.js';
import { runCommand, type SqlWork } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import type { UsageRecord } from './meter.js';

type Totals = Map<string, { requests: number; costNanos: bigint }>;

function addTo(totals: Totals, records: readonly UsageRecord[]): void {
  for (const r of records) {
    const t = totals.get(r.orgId);
    if (t) {
      t.requests++;
      t.costNanos += r.costNanos;
    } else totals.set(r.orgId, { requests: 1, costNanos: r.costNanos });
  }
}

function merge(into: Totals, from: Totals): void {
  for (const [orgId, t] of from) {
    const acc = into.get(orgId);
    if (acc) {
      acc.requests += t.requests;
      acc.costNanos += t.costNanos;
    } else into.set(orgId, { ...t });
  }
}

/** The totals as `usage` live events (not stored) of the unit of work. */
function emitTotals(work: Pick<SqlWork, 'emit'>, totals: Iterable<[string, { requests: number; costNanos: bigint }]>): void {
  for (const [orgId, t] of totals) work.emit(orgId, { type: 'usage', requests: t.requests, cost: nanosToDecimal(t.costNanos) }, { store: false });
}

/**
 * What a meter batch (one family: the whole batch, its retries and split halves) decided about the
 * usage event. The first of its whole-batch attempts to reach inBatch decides; every later whole
 * attempt emits the same (so whichever attempt commits, what it published is known); split halves
 * never emit.
 */
export interface BatchUsage {
  decided: boolean;
  /** The unpublished totals the batch took to publish with its own records (null: nothing was due). */
  taken: Totals | null;
}

export class UsageEvents {
  private totals: Totals = new Map();
  private timer: NodeJS.Timeout | null = null;
  private lastFlush = 0;
  private flushing: Promise<void> | null = null;

  /**
   * Set by the gateway: whether a meter batch is coming (records pending, or a batch committing).
   * Then the timer leaves a due summary to that batch, which publishes it in its own transaction.
   */
  batchComing: () => boolean = () => false;

  constructor(
    private readonly services: Services,
    private readonly intervalMs = 400,
  ) {}

  private schedule(): void {
    if (this.timer || this.totals.size === 0) return;
    const wait = Math.max(0, this.lastFlush + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      // The coming batch takes the totals (inBatch), or re-arms this timer when it settles.
      if (this.batchComing()) return;
      void this.flush();
    }, wait);
  }

  /**
   * Inside a whole meter batch's transaction, after its claim: when an event is due (or an earlier
   * attempt of this batch took the totals), emits the unpublished totals plus `records` as this
   * transaction's `usage` events. The meter reports the batch's outcome to settle().
   */
  inBatch(work: SqlWork, records: readonly UsageRecord[], batch: BatchUsage): void {
    if (!batch.decided) {
      batch.decided = true;
      if (this.flushing || Date.now() - this.lastFlush < this.intervalMs) return;
      batch.taken = this.totals;
      this.totals = new Map();
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.lastFlush = Date.now();
    }
    if (!batch.taken) return;
    const out: Totals = new Map();
    merge(out, batch.taken);
    addTo(out, records);
    emitTotals(work, out);
  }

  /**
   * A batch family is done. `published`: an attempt that emitted its usage events committed (then
   * its records and the totals it took are published). Otherwise the totals it took go back, and
   * its committed records are added for the next event.
   */
  settle(batch: BatchUsage, published: boolean, committed: readonly UsageRecord[]): void {
    if (batch.taken && published) return;
    if (batch.taken) merge(this.totals, batch.taken);
    addTo(this.totals, committed);
    this.schedule();
  }

  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.totals.size === 0) return;
    this.lastFlush = Date.now();
    const batch = [...this.totals];
    this.totals = new Map();
    this.flushing = runCommand(this.services, null, async (work) => emitTotals(work, batch))
      .catch((err) => this.services.log.warn({ err }, 'usage event not published'))
      .finally(() => {
        this.flushing = null;
      });
    await this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
