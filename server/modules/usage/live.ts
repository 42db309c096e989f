/**
 * Coalesced `usage` live events: committed usage is summed per organization and published at most
 * every `intervalMs` per instance (one NOTIFY transaction for all organizations), so a busy
 * organization's dashboard gets a few updates a second, not one per request.
 */
import { nanosToDecimal } from '../../../shared/money.js';
import { runCommand } from '../../events/unit-of-work.js';
import type { Services } from '../../services.js';
import type { UsageRecord } from './meter.js';

export class UsageEvents {
  private readonly totals = new Map<string, { requests: number; costNanos: bigint }>();
  private timer: NodeJS.Timeout | null = null;
  private lastFlush = 0;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly services: Services,
    private readonly intervalMs = 400,
  ) {}

  add(records: UsageRecord[]): void {
    for (const r of records) {
      const t = this.totals.get(r.orgId) ?? { requests: 0, costNanos: 0n };
      t.requests++;
      t.costNanos += r.costNanos;
      this.totals.set(r.orgId, t);
    }
    if (this.timer) return;
    const wait = Math.max(0, this.lastFlush + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, wait);
  }

  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.totals.size === 0) return;
    this.lastFlush = Date.now();
    const batch = [...this.totals];
    this.totals.clear();
    this.flushing = runCommand(this.services, null, async (work) => {
      for (const [orgId, t] of batch) work.emit(orgId, { type: 'usage', requests: t.requests, cost: nanosToDecimal(t.costNanos) }, { store: false });
    })
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
