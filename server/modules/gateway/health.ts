/**
 * Provider health as the router sees it (issue #11): every upstream attempt is reported here, and
 * the router asks which provider keys to skip (cooled down after 401/403/429, or a provider whose
 * circuit is open) and how each provider has been doing (for the price/latency/uptime strategies).
 *
 * SharedProviderHealth (what the gateway uses) is shared by every instance through PostgreSQL:
 * - The hot path (`record`, `coolDown`, `available`, `score`) only touches this process's maps.
 * - Each instance sums its attempts per (organization, provider, credential, minute) in memory and
 *   every `flushMs` (2 s) upserts them into `provider_health`, adding counts and histogram buckets
 *   (latency and time to first token in the rollups' buckets, so p50/p95 come from
 *   usage/histogram.ts). Right after, it reads back the last READ_MINUTES (5) minutes of everyone's
 *   counts (summed per provider, credential and minute), so its circuits and scores include every
 *   instance's calls within a few seconds. The dashboard (providerHealth.get) reads an
 *   organization's last 60 minutes straight from the table.
 * - Cool-downs travel the same way (`cooled_until`, the latest wins), for credentials this instance
 *   has seen an attempt of (their organization and provider are known from it).
 * - Rows older than a day are deleted by every instance every 10 minutes (an idempotent delete).
 *
 * Circuit breaker, per provider (counting the attempts through the operator's keys, whose endpoints
 * all organizations share: an organization's failing key must not close a provider to the others)
 * and per credential (every key, organizations' own included). Over the current and the previous
 * minute (60 to 120 s of calls), a circuit OPENS when it has at least `minCalls` (10) attempts and
 * at least `failureRate` (50%) of them failed. While open, `available` is false for it. After
 * `coolOffMs` (30 s) it is HALF-OPEN: `available` is true for exactly one caller (the probe); the
 * probe's success CLOSES it (the failures before that no longer count), its failure opens it again
 * for twice as long (at most `maxCoolOffMs`, 5 min). A probe that never reports frees the slot after
 * `probeTimeoutMs` (60 s). Every instance runs its own breakers on the shared counts, so each sends
 * at most one probe per cool-off. `peek` answers the same without taking the probe slot (for
 * filtering candidates); `available` is for the key actually tried.
 */
import pg from 'pg';
import { histogramQuantile, LATENCY_BUCKET_COUNT, latencyBucket } from '../usage/histogram.js';
import { addCounts, emptyHealthCounts as emptyCounts, healthRowOf, SUMS_SQL, UPSERT_SQL, type HealthCounts, type HealthDbRow, type HealthRow } from './health-counts.js';
import { handlePoolErrors } from '../../db/pg-errors.js';
import { reportFailure, type FailureLog } from '../../observability/failures.js';

/** Which credential an attempt used: an organization's provider key id, or `operator:<provider>:<index>` for the environment's keys. */
export type CredentialRef = string;

/** The credential ref of the operator's `index`th key (0-based) for a provider. */
export const operatorCredential = (provider: string, index: number): CredentialRef => `operator:${provider}:${index}`;

/** One upstream attempt, reported when it ended (successfully or not). */
export interface AttemptSample {
  orgId: string;
  provider: string;
  credential: CredentialRef;
  /** True when the upstream answered in a way that is not the provider's fault (2xx, or a 4xx the request caused). */
  ok: boolean;
  /** The upstream status, or 0 for a connection error or a timeout before headers. */
  status: number;
  latencyMs: number;
  ttftMs: number | null;
  at: number;
}

/** How a provider (for one organization's traffic, or everyone's) has been doing recently; null fields: no data. */
export interface ProviderScore {
  successRate: number | null;
  p50LatencyMs: number | null;
  p50TtftMs: number | null;
  samples: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface ProviderHealth {
  record(sample: AttemptSample): void;
  /** Skip this credential for now (a 401/403/429 from it); `ms` how long. */
  coolDown(credential: CredentialRef, ms: number): void;
  /** Whether a credential may take calls now (not cooled down, its provider's circuit not open, or this call is the probe). */
  available(provider: string, credential: CredentialRef): boolean;
  /** The provider's recent record, for routing by strategy. */
  score(provider: string): ProviderScore;
  /**
   * Like `available` without taking a half-open circuit's probe slot (true when a probe may go):
   * for filtering candidates. Call `available` only for the key actually tried, since each `true`
   * from it on a half-open circuit is that circuit's one probe.
   */
  peek?(provider: string, credential: CredentialRef): boolean;
}

/** The breaker's and the flusher's settings (see the file comment); tests shorten them. */
export interface HealthSettings {
  flushMs: number;
  minCalls: number;
  failureRate: number;
  coolOffMs: number;
  maxCoolOffMs: number;
  probeTimeoutMs: number;
}
export const DEFAULT_HEALTH_SETTINGS: HealthSettings = { flushMs: 2000, minCalls: 10, failureRate: 0.5, coolOffMs: 30_000, maxCoolOffMs: 300_000, probeTimeoutMs: 60_000 };

const MINUTE = 60_000;
/** How many minutes of everyone's rows each instance reads back (circuits need 2, scores 5). */
const READ_MINUTES = 5;
const RETENTION_MS = 24 * 60 * MINUTE;
const PRUNE_EVERY_MS = 10 * MINUTE;
const MAX_PENDING_ROWS = 50_000;
const MAX_KNOWN_CREDENTIALS = 50_000;


/**
 * Whether an attempt counts towards its provider's circuit: only the operator's keys', whose
 * endpoints every organization shares. An organization's own key (its own base URL, deployment or
 * account) has its own circuit only, so one tenant's failing key never closes a provider to others.
 */
const sharedEndpoint = (credential: CredentialRef) => credential.startsWith('operator:');

const rowKey = (orgId: string, provider: string, credential: string, minute: number) => `${orgId}\u0000${provider}\u0000${credential}\u0000${minute}`;

type WindowCounts = Map<number, { calls: number; failures: number }>;
interface Circuit {
  /** Epoch ms until which it is open; past it, half-open. 0 once closed. */
  openUntil: number;
  coolOffMs: number;
  /** When the current probe was let through, or null. */
  probeAt: number | null;
  /** Closed: the window's counts when it closed (they no longer count towards opening it again). */
  baseline: WindowCounts | null;
  closedAt: number;
}

/** Provider health of every instance, through PostgreSQL (see the file comment). */
export class SharedProviderHealth implements ProviderHealth {
  readonly settings: HealthSettings;
  /** Attempts not yet written. */
  private pending = new Map<string, HealthRow>();
  /** Written, but not yet in `remote` (the read after the write has not succeeded yet). */
  private unread = new Map<string, HealthRow>();
  /** Everyone's counts of the last READ_MINUTES minutes per provider, credential and minute (organizations summed), as last read. */
  private remote: HealthRow[] = [];
  /** Per circuit (`p:<provider>`, `c:<credential>`): attempts and failures per minute of the current and previous minute. */
  private readonly windows = new Map<string, WindowCounts>();
  private readonly circuits = new Map<string, Circuit>();
  private readonly cooled = new Map<CredentialRef, number>();
  /** Cool-downs set here, to be written with the next flush. */
  private readonly cooledToShare = new Set<CredentialRef>();
  /** Which organization and provider a credential belongs to (learned from its attempts). */
  private readonly owners = new Map<CredentialRef, { orgId: string; provider: string }>();
  private scores = new Map<string, ProviderScore>();
  private readonly pool: pg.Pool;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private lastPrune = 0;
  private stopped = false;

  constructor(
    databaseUrl: string,
    private readonly log: FailureLog & { warn(obj: unknown, msg?: string): void },
    settings: Partial<HealthSettings> = {},
  ) {
    this.settings = { ...DEFAULT_HEALTH_SETTINGS, ...settings };
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 1, idleTimeoutMillis: 60_000, application_name: 'provider-health' });
    handlePoolErrors(this.pool, log, 'provider health');
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.sync(), this.settings.flushMs);
    this.timer.unref();
  }

  /** Writes what is pending and stops (the gateway's close). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    await this.flushPending();
    await this.pool.end();
  }

  // ---- the hot path: map lookups only ----

  record(sample: AttemptSample): void {
    const minute = Math.floor(sample.at / MINUTE) * MINUTE;
    const key = rowKey(sample.orgId, sample.provider, sample.credential, minute);
    let row = this.pending.get(key);
    if (!row) {
      if (this.pending.size >= MAX_PENDING_ROWS) return; // the database is away for long: newest attempts are dropped from health (counted nowhere else)
      row = { orgId: sample.orgId, provider: sample.provider, credential: sample.credential, minute, ...emptyCounts() };
      this.pending.set(key, row);
    }
    row.calls += 1;
    if (!sample.ok) row.failures += 1;
    row.lat[latencyBucket(sample.latencyMs)]! += 1;
    if (sample.ttftMs !== null) row.ttft[latencyBucket(sample.ttftMs)]! += 1;
    if (!this.owners.has(sample.credential)) {
      if (this.owners.size >= MAX_KNOWN_CREDENTIALS) this.owners.delete(this.owners.keys().next().value as string);
      this.owners.set(sample.credential, { orgId: sample.orgId, provider: sample.provider });
    }
    const now = Date.now();
    if (sharedEndpoint(sample.credential)) this.observe(`p:${sample.provider}`, minute, sample.ok, now);
    this.observe(`c:${sample.credential}`, minute, sample.ok, now);
  }

  coolDown(credential: CredentialRef, ms: number): void {
    const until = Date.now() + ms;
    if ((this.cooled.get(credential) ?? 0) >= until) return;
    this.cooled.set(credential, until);
    this.cooledToShare.add(credential);
  }

  available(provider: string, credential: CredentialRef): boolean {
    const now = Date.now();
    const until = this.cooled.get(credential);
    if (until !== undefined) {
      if (now < until) return false;
      this.cooled.delete(credential);
    }
    const byKey = this.gate(`c:${credential}`, now);
    const byProvider = provider === 'custom' ? 'pass' : this.gate(`p:${provider}`, now);
    if (byKey === 'refuse' || byProvider === 'refuse') return false;
    // Let the probe through (one caller per half-open circuit).
    if (byKey === 'probe') this.circuits.get(`c:${credential}`)!.probeAt = now;
    if (byProvider === 'probe') this.circuits.get(`p:${provider}`)!.probeAt = now;
    return true;
  }

  peek(provider: string, credential: CredentialRef): boolean {
    const now = Date.now();
    const until = this.cooled.get(credential);
    if (until !== undefined && now < until) return false;
    return this.gate(`c:${credential}`, now) !== 'refuse' && (provider === 'custom' || this.gate(`p:${provider}`, now) !== 'refuse');
  }

  score(provider: string): ProviderScore {
    return this.scores.get(provider) ?? { successRate: null, p50LatencyMs: null, p50TtftMs: null, samples: 0 };
  }

  // ---- what the dashboard shows ----

  /** The circuit of a provider (`credential` null) or of one of its credentials. */
  circuitState(provider: string, credential: CredentialRef | null = null): CircuitState {
    if (credential === null && provider === 'custom') return 'closed';
    const circuit = this.circuits.get(credential === null ? `p:${provider}` : `c:${credential}`);
    if (!circuit || circuit.openUntil === 0) return 'closed';
    return Date.now() < circuit.openUntil ? 'open' : 'half-open';
  }

  /** Until when this credential is cooled down here (epoch ms), or null. */
  cooledUntil(credential: CredentialRef): number | null {
    const until = this.cooled.get(credential);
    return until !== undefined && until > Date.now() ? until : null;
  }

  /** This instance's attempts of an organization not yet written (the dashboard adds them to the table's rows). */
  unwritten(orgId: string): HealthRow[] {
    const rows: HealthRow[] = [];
    for (const row of this.pending.values()) if (row.orgId === orgId) rows.push(row);
    return rows;
  }

  // ---- the breaker ----

  private windowOf(key: string, minute: number): WindowCounts {
    let window = this.windows.get(key);
    if (!window) this.windows.set(key, (window = new Map()));
    if (!window.has(minute)) {
      for (const m of window.keys()) if (m < minute - MINUTE) window.delete(m);
      window.set(minute, { calls: 0, failures: 0 });
    }
    return window;
  }

  private observe(key: string, minute: number, ok: boolean, now: number): void {
    const counts = this.windowOf(key, minute).get(minute)!;
    counts.calls += 1;
    if (!ok) counts.failures += 1;
    const circuit = this.circuits.get(key);
    if (circuit && circuit.openUntil !== 0) {
      // Open: only the probe's outcome (half-open, probe let through) moves it.
      if (now < circuit.openUntil || circuit.probeAt === null) return;
      if (ok) this.closeCircuit(key, circuit, now);
      else {
        circuit.coolOffMs = Math.min(circuit.coolOffMs * 2, this.settings.maxCoolOffMs);
        circuit.openUntil = now + circuit.coolOffMs;
        circuit.probeAt = null;
      }
      return;
    }
    if (!ok) this.evaluate(key, now);
  }

  /** Opens a closed circuit whose window has enough calls and failures (those after its last close). */
  private evaluate(key: string, now: number): void {
    const circuit = this.circuits.get(key);
    if (circuit && circuit.openUntil !== 0) return;
    const current = Math.floor(now / MINUTE) * MINUTE;
    let calls = 0;
    let failures = 0;
    for (const [minute, c] of this.windows.get(key) ?? []) {
      if (minute < current - MINUTE) continue;
      const base = circuit?.baseline?.get(minute);
      calls += c.calls - (base?.calls ?? 0);
      failures += c.failures - (base?.failures ?? 0);
    }
    if (calls >= this.settings.minCalls && failures >= calls * this.settings.failureRate) {
      this.circuits.set(key, { openUntil: now + this.settings.coolOffMs, coolOffMs: this.settings.coolOffMs, probeAt: null, baseline: null, closedAt: 0 });
      this.log.warn({ circuit: key, calls, failures }, 'provider health: circuit opened');
    }
  }

  private closeCircuit(key: string, circuit: Circuit, now: number): void {
    const baseline: WindowCounts = new Map();
    for (const [minute, c] of this.windows.get(key) ?? []) baseline.set(minute, { ...c });
    circuit.openUntil = 0;
    circuit.probeAt = null;
    circuit.baseline = baseline;
    circuit.closedAt = now;
  }

  private gate(key: string, now: number): 'pass' | 'refuse' | 'probe' {
    const circuit = this.circuits.get(key);
    if (!circuit || circuit.openUntil === 0) return 'pass';
    if (now < circuit.openUntil) return 'refuse';
    if (circuit.probeAt !== null && now - circuit.probeAt < this.settings.probeTimeoutMs) return 'refuse';
    return 'probe';
  }

  // ---- sharing through PostgreSQL ----

  /** One round: write what is pending, read everyone's recent rows, rebuild windows and scores. Exposed for tests. */
  sync(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = (async () => {
      try {
        await this.flushPending();
        await this.readBack();
        if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) await this.prune();
      } finally {
        this.ticking = null;
      }
    })();
    return this.ticking;
  }

  private async flushPending(): Promise<void> {
    const now = Date.now();
    for (const credential of this.cooledToShare) {
      const owner = this.owners.get(credential);
      const until = this.cooled.get(credential);
      if (!owner || until === undefined) continue; // not seen here: stays local
      const minute = Math.floor(now / MINUTE) * MINUTE;
      const key = rowKey(owner.orgId, owner.provider, credential, minute);
      let row = this.pending.get(key);
      if (!row) this.pending.set(key, (row = { ...owner, credential, minute, ...emptyCounts() }));
      row.cooledUntil = Math.max(row.cooledUntil ?? 0, until);
    }
    this.cooledToShare.clear();
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()].sort((a, b) => (rowKey(a.orgId, a.provider, a.credential, a.minute) < rowKey(b.orgId, b.provider, b.credential, b.minute) ? -1 : 1));
    this.pending = new Map();
    const params: unknown[] = [batch.map((r) => r.orgId), batch.map((r) => r.provider), batch.map((r) => r.credential), batch.map((r) => new Date(r.minute))];
    params.push(batch.map((r) => r.calls), batch.map((r) => r.failures));
    for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) params.push(batch.map((r) => r.lat[i]!));
    for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) params.push(batch.map((r) => r.ttft[i]!));
    params.push(batch.map((r) => (r.cooledUntil === null ? null : new Date(r.cooledUntil))));
    try {
      await this.pool.query(UPSERT_SQL, params);
      for (const row of batch) {
        const key = rowKey(row.orgId, row.provider, row.credential, row.minute);
        const seen = this.unread.get(key);
        if (seen) addCounts(seen, row);
        else this.unread.set(key, row);
      }
    } catch (err) {
      // Kept for the next round (added to what arrived meanwhile); the counts are only health, never money.
      for (const row of batch) {
        const key = rowKey(row.orgId, row.provider, row.credential, row.minute);
        const newer = this.pending.get(key);
        if (newer) addCounts(newer, row);
        else if (this.pending.size < MAX_PENDING_ROWS) this.pending.set(key, row);
      }
      reportFailure(this.log, 'provider health flush', err, { rows: batch.length });
    }
  }

  private async readBack(): Promise<void> {
    const since = new Date(Math.floor(Date.now() / MINUTE) * MINUTE - (READ_MINUTES - 1) * MINUTE);
    let rows: HealthRow[];
    try {
      // Summed over organizations in SQL: circuits and scores need providers and credentials (an
      // operator key serves many organizations), so the answer is credentials x minutes, not rows.
      const result = await this.pool.query<HealthDbRow>(SUMS_SQL, [since]);
      rows = result.rows.map(healthRowOf);
    } catch (err) {
      reportFailure(this.log, 'provider health read', err);
      return;
    }
    this.remote = rows;
    this.unread = new Map();
    this.rebuild();
  }

  /** Deletes rows older than a day (every instance, every 10 minutes, from sync). */
  async prune(): Promise<void> {
    this.lastPrune = Date.now();
    try {
      await this.pool.query(`delete from provider_health where minute < $1`, [new Date(Date.now() - RETENTION_MS)]);
    } catch (err) {
      reportFailure(this.log, 'provider health prune', err);
    }
  }

  /** Windows, shared cool-downs and scores from everyone's rows plus this instance's unwritten ones. */
  private rebuild(): void {
    const now = Date.now();
    const current = Math.floor(now / MINUTE) * MINUTE;
    const all = [...this.remote, ...this.unread.values(), ...this.pending.values()];
    for (const [credential, until] of this.cooled) if (until <= now) this.cooled.delete(credential);
    this.windows.clear();
    const byProvider = new Map<string, HealthCounts>();
    for (const row of all) {
      if (row.cooledUntil !== null && row.cooledUntil > now && (this.cooled.get(row.credential) ?? 0) < row.cooledUntil) this.cooled.set(row.credential, row.cooledUntil);
      if (row.minute >= current - MINUTE && row.calls > 0) {
        for (const key of sharedEndpoint(row.credential) ? [`p:${row.provider}`, `c:${row.credential}`] : [`c:${row.credential}`]) {
          let window = this.windows.get(key);
          if (!window) this.windows.set(key, (window = new Map()));
          const c = window.get(row.minute) ?? { calls: 0, failures: 0 };
          c.calls += row.calls;
          c.failures += row.failures;
          window.set(row.minute, c);
        }
      }
      let sum = byProvider.get(row.provider);
      if (!sum) byProvider.set(row.provider, (sum = emptyCounts()));
      addCounts(sum, { ...row, cooledUntil: null });
    }
    const scores = new Map<string, ProviderScore>();
    for (const [provider, sum] of byProvider) {
      if (sum.calls === 0) continue;
      scores.set(provider, { successRate: (sum.calls - sum.failures) / sum.calls, p50LatencyMs: histogramQuantile(sum.lat, 0.5), p50TtftMs: histogramQuantile(sum.ttft, 0.5), samples: sum.calls });
    }
    this.scores = scores;
    for (const [key, circuit] of this.circuits) {
      // A circuit closed more than two minutes ago has no baseline left in the window: forget it.
      if (circuit.openUntil === 0 && now - circuit.closedAt > 2 * MINUTE) this.circuits.delete(key);
    }
    for (const key of this.windows.keys()) this.evaluate(key, now);
  }
}
