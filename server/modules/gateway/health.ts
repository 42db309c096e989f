/**
 * Provider health as the router sees it (issue #11): every upstream attempt is reported here, and
 * the router asks which provider keys to skip (cooled down after 401/403/429, or a provider whose
 * circuit is open) and how each provider has been doing (for the price/latency/uptime strategies).
 *
 * This first version keeps everything in this process's memory. The shared version (every
 * instance contributes through PostgreSQL; 5- and 60-minute windows; circuit breaker with probes)
 * keeps this interface.
 */

/** Which credential an attempt used: an organization's provider key id, or `operator:<provider>:<index>` for the environment's keys. */
export type CredentialRef = string;

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

export interface ProviderHealth {
  record(sample: AttemptSample): void;
  /** Skip this credential for now (a 401/403/429 from it); `ms` how long. */
  coolDown(credential: CredentialRef, ms: number): void;
  /** Whether a credential may take calls now (not cooled down, its provider's circuit not open, or this call is the probe). */
  available(provider: string, credential: CredentialRef): boolean;
  /** The provider's recent record, for routing by strategy. */
  score(provider: string): ProviderScore;
}

/** In-memory health of this process only. */
export class LocalProviderHealth implements ProviderHealth {
  private readonly cooled = new Map<CredentialRef, number>();
  private readonly recent = new Map<string, AttemptSample[]>();

  record(sample: AttemptSample): void {
    let list = this.recent.get(sample.provider);
    if (!list) this.recent.set(sample.provider, (list = []));
    list.push(sample);
    if (list.length > 200) list.splice(0, list.length - 200);
  }

  coolDown(credential: CredentialRef, ms: number): void {
    this.cooled.set(credential, Date.now() + ms);
  }

  available(_provider: string, credential: CredentialRef): boolean {
    const until = this.cooled.get(credential);
    if (until === undefined) return true;
    if (Date.now() >= until) {
      this.cooled.delete(credential);
      return true;
    }
    return false;
  }

  score(provider: string): ProviderScore {
    const list = this.recent.get(provider) ?? [];
    if (list.length === 0) return { successRate: null, p50LatencyMs: null, p50TtftMs: null, samples: 0 };
    const median = (xs: number[]) => (xs.length === 0 ? null : xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
    return {
      successRate: list.filter((s) => s.ok).length / list.length,
      p50LatencyMs: median(list.map((s) => s.latencyMs)),
      p50TtftMs: median(list.flatMap((s) => (s.ttftMs === null ? [] : [s.ttftMs]))),
      samples: list.length,
    };
  }
}
