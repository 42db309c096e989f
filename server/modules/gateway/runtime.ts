/**
 * What the gateway's hot path needs without a database round trip: API keys by hash, projects,
 * organizations (plan, retention, balance) and their decrypted provider keys.
 *
 * Freshness: revoking an API key or changing provider keys NOTIFYs `gateway_cache` inside the
 * command's transaction; every instance evicts on commit. Project and organization changes and
 * balance moves arrive through the event bus (project.updated, organization.updated,
 * credits.changed). While either connection is down, nothing is trusted from the caches.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { LiveEvent } from '../../../shared/events.js';
import { decimalToNanos } from '../../../shared/money.js';
import type { PlanId, RetentionLevel } from '../../../shared/plans.js';
import type { Services } from '../../services.js';
import { apiKeyHashHex, looksLikeApiKey } from '../apiKeys/keys.js';
import { GatewayError, rateLimited, unauthorized } from './errors.js';
import { InvalidationListener, type Invalidation } from './invalidation.js';
import type { ProjectMode, ProviderCredential } from './targets.js';
import type { RowOf } from '../../db/rows.js';
import type { ApiKey } from '../apiKeys/entities.js';
import type { Organization } from '../organizations/entities.js';
import type { Project } from '../projects/entities.js';
import type { ProviderKey } from '../providerKeys/entities.js';
import type { RateLimit } from '../auth/entities.js';
import type { Role } from '../../../shared/permissions.js';
import type { LimitPeriod } from '../../../shared/limits.js';
import type { LimitSetting } from '../limits/admission.js';

export interface KeyInfo {
  apiKeyId: string;
  orgId: string;
  projectId: string;
  rpmLimit: number | null;
  /** Epoch ms after which this secret is refused: the key's expiry, or a rolled-away secret's grace end. */
  refuseAfterMs: number | null;
  /** Why the key's calls are refused after refuseAfterMs ('expired' or 'rolled'). */
  refuseReason: 'expired' | 'rolled' | null;
  enabled: boolean;
  allowedModels: string[] | null;
  allowedProviders: string[] | null;
  /** The key's spend limit (issue #12; server/modules/limits). */
  spendLimit: LimitSetting | null;
  /** The member who owns the key (created it, or was given it), their role and own budget: the member budget applies to the key's calls. */
  ownerId: string | null;
  ownerRole: Role | null;
  memberBudget: LimitSetting | null;
}
export interface ProjectInfo {
  id: string;
  orgId: string;
  mode: ProjectMode;
  cachingEnabled: boolean;
  cacheTtlSeconds: number;
  /** Browser origins allowed to call /v1 with this project's keys (CORS); empty: any origin. */
  allowedOrigins: string[];
  /** How calls of this project fail over and pick providers (project.update {routing}; issue #11). */
  routing: ProjectRouting;
}
export type RoutingStrategy = 'balanced' | 'price' | 'latency' | 'uptime';
export interface ProjectRouting {
  strategy: RoutingStrategy;
  /** Upstream attempts per call at most, the first included. */
  maxAttempts: number;
  /** Per requested model, the models tried after it when it fails (a request's own `models` list wins). */
  fallbacks: Record<string, string[]>;
}
export const DEFAULT_ROUTING: ProjectRouting = Object.freeze({ strategy: 'balanced', maxAttempts: 3, fallbacks: Object.freeze({}) as Record<string, string[]> });
/** A project's stored routing (project.routing, as set) over the defaults; the defaults object itself when nothing is set. */
export function projectRouting(stored: Partial<ProjectRouting> | null | undefined): ProjectRouting {
  if (!stored || Object.keys(stored).length === 0) return DEFAULT_ROUTING;
  return { ...DEFAULT_ROUTING, ...stored, fallbacks: stored.fallbacks ?? DEFAULT_ROUTING.fallbacks };
}
export interface OrgInfo {
  id: string;
  plan: PlanId;
  retentionLevel: RetentionLevel;
  creditsNanos: bigint;
  /** Spend limits (issue #12): developers' default budget, daily and monthly caps on credits, calls in flight at once. */
  developerBudget: LimitSetting | null;
  dailySpendCap: bigint | null;
  monthlySpendCap: bigint | null;
  maxConcurrentCalls: number | null;
}
export interface CallerContext {
  key: KeyInfo;
  project: ProjectInfo;
  org: OrgInfo;
}

const KEY_TTL_MS = 5 * 60_000;
const NEGATIVE_TTL_MS = 10_000;
const ENTITY_TTL_MS = 60_000;
const MAX_ENTRIES = 50_000;

type Timed<T> = { value: T; at: number };
type Query = <T>(sql: string, params: unknown[]) => Promise<T>;

type ResolvedRow = RowOf<typeof ApiKey, 'id' | 'org_id' | 'project_id' | 'rpm_limit' | 'revoked_at' | 'expires_at' | 'enabled' | 'allowed_models' | 'allowed_providers' | 'previous_key_expires_at' | 'spend_limit_nanos' | 'spend_limit_period'> & { current: boolean } &
  { owner_role: Role | null; budget_nanos: string | null; budget_period: LimitPeriod | null } &
  RowOf<typeof Project, 'mode' | 'caching_enabled' | 'cache_ttl_seconds' | 'allowed_origins' | 'routing'> &
  RowOf<typeof Organization, 'plan' | 'retention_level' | 'credits_nanos' | 'developer_budget_nanos' | 'developer_budget_period' | 'daily_spend_cap_nanos' | 'monthly_spend_cap_nanos' | 'max_concurrent_calls'> &
  { created_by: string | null };

/** A limit column pair (nano-dollars as text, period) as the gateway holds it. */
const setting = (nanos: string | number | bigint | null, period: LimitPeriod | null): LimitSetting | null => (nanos === null || period === null ? null : { nanos: BigInt(nanos), period });

function boundedSet<K, V>(map: Map<K, V>, key: K, value: V) {
  if (map.size >= MAX_ENTRIES && !map.has(key)) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

/** When a key's secret stops working: the key's expiry, or for a rolled-away secret the end of its grace. */
function refusal(row: ResolvedRow): Pick<KeyInfo, 'refuseAfterMs' | 'refuseReason'> {
  const expiry = row.expires_at ? new Date(row.expires_at).getTime() : null;
  const graceEnd = !row.current && row.previous_key_expires_at ? new Date(row.previous_key_expires_at).getTime() : null;
  if (graceEnd !== null && (expiry === null || graceEnd < expiry)) return { refuseAfterMs: graceEnd, refuseReason: 'rolled' };
  return expiry === null ? { refuseAfterMs: null, refuseReason: null } : { refuseAfterMs: expiry, refuseReason: 'expired' };
}

/** Throws 401 for a disabled key, an expired one, or a rolled-away secret past its grace period. */
function usable(key: KeyInfo, now: number): void {
  if (key.refuseAfterMs !== null && now >= key.refuseAfterMs) {
    if (key.refuseReason === 'rolled') throw unauthorized();
    throw new GatewayError(401, 'this API key has expired; create a new one or ask an admin to extend it', 'authentication_error', 'api_key_expired');
  }
  if (!key.enabled) throw new GatewayError(401, 'this API key is disabled; enable it under API keys in the dashboard', 'authentication_error', 'api_key_disabled');
}

export class GatewayRuntime {
  private readonly keys = new Map<string, Timed<KeyInfo | null>>();
  /** The secrets' hashes cached per key id (the current one, and a rolled-away one in its grace period). */
  private readonly keyHashById = new Map<string, string[]>();
  private readonly projects = new Map<string, Timed<ProjectInfo>>();
  private readonly orgs = new Map<string, Timed<OrgInfo> & { unsubscribe: () => void }>();
  private readonly credentials = new Map<string, Timed<ProviderCredential[]>>();
  private readonly listener: InvalidationListener;
  /** Commands on this instance waiting for every instance to confirm an invalidation. */
  private readonly ackWaiters = new Map<string, { needed: number; got: number; done: () => void }>();
  /** Confirmations heard before anyone waited for them (they can beat the committing code). */
  private readonly earlyAcks = new Map<string, number>();
  readonly query: Query;
  private readonly detachAcks: () => void;

  constructor(
    private readonly services: Services,
    databaseUrl: string,
  ) {
    const connection = (services.orm as MikroORM).em.getConnection();
    this.query = <T>(sql: string, params: unknown[]) => connection.execute(sql, params as never[]) as Promise<T>;
    this.listener = new InvalidationListener(databaseUrl, { apply: (m) => this.apply(m), ack: (nonce) => this.ack(nonce), reset: () => this.reset() }, services.log);
    this.detachAcks = services.invalidation.attach((nonce, instances, timeoutMs) => this.awaitAcks(nonce, instances, timeoutMs));
  }

  /** Resolves once `instances` instances confirmed the invalidation `nonce` (or after timeoutMs). */
  private awaitAcks(nonce: string, instances: number, timeoutMs: number): Promise<void> {
    const early = this.earlyAcks.get(nonce) ?? 0;
    this.earlyAcks.delete(nonce);
    if (!this.listener.listening || early >= instances) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        const waiter = this.ackWaiters.get(nonce);
        this.ackWaiters.delete(nonce);
        this.services.log.warn({ nonce, confirmed: waiter?.got ?? early, instances }, 'not every instance confirmed a gateway cache invalidation in time');
        resolve();
      }, timeoutMs);
      this.ackWaiters.set(nonce, {
        needed: instances,
        got: early,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private ack(nonce: string): void {
    const waiter = this.ackWaiters.get(nonce);
    if (waiter) {
      if (++waiter.got >= waiter.needed) {
        this.ackWaiters.delete(nonce);
        waiter.done();
      }
      return;
    }
    this.earlyAcks.set(nonce, (this.earlyAcks.get(nonce) ?? 0) + 1);
    if (this.earlyAcks.size > 1000) this.earlyAcks.delete(this.earlyAcks.keys().next().value as string);
  }

  async start(): Promise<void> {
    await this.listener.start();
  }

  async stop(): Promise<void> {
    this.detachAcks();
    await this.listener.stop();
    this.reset();
  }

  private get trusted(): boolean {
    return this.listener.listening && this.services.bus.isListening();
  }

  private apply(message: Invalidation): void {
    if (message.kind === 'apiKey') {
      for (const hash of this.keyHashById.get(message.apiKeyId) ?? []) this.keys.delete(hash);
      this.keyHashById.delete(message.apiKeyId);
    } else if (message.kind === 'providerKeys') {
      this.credentials.delete(message.orgId);
    } else if (message.kind === 'project') {
      this.projects.delete(message.projectId);
    } else if (message.kind === 'organization') {
      this.forgetOrg(message.orgId);
      // Keys carry their member's role and budget (spend limits): read again too.
      for (const [hash, k] of this.keys) if (k.value?.orgId === message.orgId) this.keys.delete(hash);
    }
  }

  /** Forget everything (connection lost or re-established). */
  reset(): void {
    this.keys.clear();
    this.keyHashById.clear();
    this.projects.clear();
    this.credentials.clear();
    for (const org of this.orgs.values()) org.unsubscribe();
    this.orgs.clear();
  }

  private forgetOrg(orgId: string): void {
    this.orgs.get(orgId)?.unsubscribe();
    this.orgs.delete(orgId);
    this.credentials.delete(orgId);
  }

  private onOrgEvent(orgId: string, event: LiveEvent): void {
    switch (event.type) {
      case 'credits.changed': {
        const org = this.orgs.get(orgId);
        if (org) org.value.creditsNanos = decimalToNanos(event.credits);
        break;
      }
      case 'organization.updated':
        // Read again on the next call rather than applied: a late event must not undo a newer state
        // that an acknowledged invalidation already made this instance read.
        this.forgetOrg(orgId);
        break;
      case 'project.updated':
      case 'project.deleted':
        this.projects.delete(event.projectId);
        break;
      case 'organization.deleted':
        this.forgetOrg(orgId);
        for (const [id, p] of this.projects) if (p.value.orgId === orgId) this.projects.delete(id);
        break;
      default:
        break;
    }
  }

  private rememberOrg(info: OrgInfo): void {
    const existing = this.orgs.get(info.id);
    if (existing) {
      existing.value = info;
      existing.at = Date.now();
      return;
    }
    const unsubscribe = this.services.bus.subscribeOrg(info.id, {
      deliver: (event) => this.onOrgEvent(info.id, event),
      resync: () => this.forgetOrg(info.id),
    });
    if (this.orgs.size >= MAX_ENTRIES) {
      const oldest = this.orgs.keys().next().value as string;
      this.forgetOrg(oldest);
    }
    this.orgs.set(info.id, { value: info, at: Date.now(), unsubscribe });
  }

  /** Called after a usage batch commits on this instance: the balance it left. */
  setBalance(orgId: string, creditsNanos: bigint): void {
    const org = this.orgs.get(orgId);
    if (org) org.value.creditsNanos = creditsNanos;
  }

  /** The key's SHA-256 (hex) from `Authorization: Bearer <key>`; throws 401 when there is no plausible key. */
  private keyHashOf(authorization: string | undefined): string {
    const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!m) throw unauthorized('missing API key: send Authorization: Bearer <your project API key>');
    const key = m[1]!;
    if (!looksLikeApiKey(key)) throw unauthorized();
    return apiKeyHashHex(key);
  }

  /** From the caches alone: the caller, or null when something must be read (throws 401 for a key known to be refused). */
  private cachedCallerOf(hashHex: string, now: number): CallerContext | null {
    const cached = this.trusted ? this.keys.get(hashHex) : undefined;
    if (!cached || now - cached.at >= (cached.value ? KEY_TTL_MS : NEGATIVE_TTL_MS)) return null;
    if (!cached.value) throw unauthorized();
    usable(cached.value, now);
    const project = this.projects.get(cached.value.projectId);
    const org = this.orgs.get(cached.value.orgId);
    if (project && org && now - project.at < ENTITY_TTL_MS && now - org.at < ENTITY_TTL_MS) return { key: cached.value, project: project.value, org: org.value };
    return null;
  }

  /**
   * authenticate() without a promise when the caches answer (nearly every call): the caller, or
   * null when authenticate() must read the database. Throws 401 as authenticate() does.
   */
  cachedCaller(authorization: string | undefined): CallerContext | null {
    return this.cachedCallerOf(this.keyHashOf(authorization), Date.now());
  }

  /** Resolves `Authorization: Bearer <key>` to its key, project and organization, or throws 401. */
  async authenticate(authorization: string | undefined): Promise<CallerContext> {
    const hashHex = this.keyHashOf(authorization);
    const now = Date.now();
    const hit = this.cachedCallerOf(hashHex, now);
    if (hit) return hit;
    const trusted = this.trusted;
    const hash = Buffer.from(hashHex, 'hex');
    const rows = await this.query<ResolvedRow[]>(
      `select k.id, k.org_id, k.project_id, k.rpm_limit, k.revoked_at, k.expires_at, k.enabled, k.allowed_models, k.allowed_providers,
              k.previous_key_expires_at, k.key_hash = ? as current, p.mode, p.caching_enabled, p.cache_ttl_seconds, p.allowed_origins, p.routing,
              o.plan, o.retention_level, o.credits_nanos,
              k.spend_limit_nanos, k.spend_limit_period, k.created_by, m.role as owner_role, b.amount_nanos as budget_nanos, b.period as budget_period,
              o.developer_budget_nanos, o.developer_budget_period, o.daily_spend_cap_nanos, o.monthly_spend_cap_nanos, o.max_concurrent_calls
         from api_key k join project p on p.id = k.project_id join organization o on o.id = k.org_id
         left join membership m on m.org_id = k.org_id and m.user_id = k.created_by
         left join member_budget b on b.org_id = k.org_id and b.user_id = k.created_by
        where k.key_hash = ? or (k.previous_key_hash = ? and k.previous_key_expires_at > now())`,
      [hash, hash, hash],
    );
    const row = rows[0];
    if (!row || row.revoked_at) {
      if (trusted) boundedSet(this.keys, hashHex, { value: null, at: now });
      throw unauthorized();
    }
    const ctx: CallerContext = {
      key: {
        apiKeyId: row.id,
        orgId: row.org_id,
        projectId: row.project_id,
        rpmLimit: row.rpm_limit,
        ...refusal(row),
        enabled: row.enabled,
        allowedModels: row.allowed_models,
        allowedProviders: row.allowed_providers,
        spendLimit: setting(row.spend_limit_nanos, row.spend_limit_period),
        ownerId: row.created_by,
        ownerRole: row.owner_role,
        memberBudget: setting(row.budget_nanos, row.budget_period),
      },
      project: { id: row.project_id, orgId: row.org_id, mode: row.mode, cachingEnabled: row.caching_enabled, cacheTtlSeconds: row.cache_ttl_seconds, allowedOrigins: row.allowed_origins ?? [], routing: projectRouting(row.routing) },
      org: {
        id: row.org_id,
        plan: row.plan,
        retentionLevel: row.retention_level,
        creditsNanos: BigInt(row.credits_nanos),
        developerBudget: setting(row.developer_budget_nanos, row.developer_budget_period),
        dailySpendCap: row.daily_spend_cap_nanos === null ? null : BigInt(row.daily_spend_cap_nanos),
        monthlySpendCap: row.monthly_spend_cap_nanos === null ? null : BigInt(row.monthly_spend_cap_nanos),
        maxConcurrentCalls: row.max_concurrent_calls,
      },
    };
    if (trusted) {
      boundedSet(this.keys, hashHex, { value: ctx.key, at: now });
      const hashes = this.keyHashById.get(row.id) ?? [];
      if (!hashes.includes(hashHex)) hashes.push(hashHex);
      boundedSet(this.keyHashById, row.id, hashes);
      boundedSet(this.projects, row.project_id, { value: ctx.project, at: now });
      this.rememberOrg(ctx.org);
      ctx.org = this.orgs.get(row.org_id)!.value;
    }
    usable(ctx.key, now);
    return ctx;
  }

  /** providerCredentials() from the cache alone, without a promise; undefined when it must read them. */
  cachedCredentials(orgId: string): ProviderCredential[] | undefined {
    const cached = this.trusted ? this.credentials.get(orgId) : undefined;
    return cached && Date.now() - cached.at < ENTITY_TTL_MS ? cached.value : undefined;
  }

  /** The organization's active provider keys, decrypted. */
  async providerCredentials(orgId: string): Promise<ProviderCredential[]> {
    const cached = this.cachedCredentials(orgId);
    if (cached) return cached;
    const rows = await this.query<RowOf<typeof ProviderKey, 'id' | 'provider' | 'name' | 'base_url' | 'options' | 'sealed_key' | 'weight'>[]>(
      `select id, provider, name, base_url, options, sealed_key, weight from provider_key where org_id = ? and status = 'active' order by created_at, id`,
      [orgId],
    );
    const creds: ProviderCredential[] = [];
    for (const r of rows) {
      try {
        creds.push({ id: r.id, kind: r.provider, name: r.name, baseUrl: r.base_url, options: r.options ?? {}, secret: this.services.secretBox.open(r.sealed_key), weight: r.weight });
      } catch (err) {
        // Sealed with another APP_SECRET: unusable, and said so in the log rather than failing every call.
        this.services.log.warn({ err, providerKeyId: r.id }, 'provider key cannot be decrypted with the current APP_SECRET');
      }
    }
    if (this.trusted) boundedSet(this.credentials, orgId, { value: creds, at: Date.now() });
    return creds;
  }

  /** Fixed one-minute windows in PostgreSQL, so every instance counts against the same limit. */
  async checkRateLimit(key: KeyInfo): Promise<void> {
    if (!key.rpmLimit) return;
    const rows = await this.query<(RowOf<typeof RateLimit, 'count'> & { reset_s: string })[]>(
      `insert into rate_limit (key, window_start, count) values (?, date_trunc('minute', now()), 1)
       on conflict (key) do update set
         count = case when rate_limit.window_start = excluded.window_start then rate_limit.count + 1 else 1 end,
         window_start = excluded.window_start
       returning count, ceil(extract(epoch from (window_start + interval '1 minute' - now())))::text as reset_s`,
      [`gw-rpm:${key.apiKeyId}`],
    );
    const row = rows[0]!;
    if (row.count > key.rpmLimit) throw rateLimited(key.rpmLimit, Math.max(1, Number(row.reset_s)));
  }
}
