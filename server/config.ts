/** Environment, validated once. */
import { availableParallelism } from 'node:os';
import { z } from 'zod';

const DURATION = /^\d+(\.\d+)?(ms|s|m|h|d)$/;
const DURATION_LIST = /^\s*\d+(\.\d+)?(ms|s|m|h|d)(\s*,\s*\d+(\.\d+)?(ms|s|m|h|d))*\s*$/;
/** About a day of growing waits: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 9 h (24 h 42 min in all). */
const DEFAULT_WEBHOOK_RETRY_SCHEDULE = '5s,30s,2m,10m,30m,1h,2h,4h,8h,9h';

/** `250ms`, `5s`, `2m`, `1h`, `1d` in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  WORKERS: z.string().trim().regex(/^(auto|[1-9]\d?)$/, { message: 'WORKERS is a number of processes from 1 to 99, or auto (one per CPU core)' }).default('1'),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  DATA_DIR: z.string().default('.data'),
  APP_URL: z.string().url().optional(),
  /** Other origins the dashboard is served on, comma-separated (checkout returns to them): https://a.example.com,https://b.example.com */
  APP_ALLOWED_ORIGINS: z.string().optional(),
  APP_SECRET: z.string().min(32).optional(),
  SMTP_URL: z.string().optional(),
  MAIL_FROM: z.string().default('LLM Gateway <no-reply@localhost>'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  EMBEDDED_PG_PORT: z.coerce.number().int().default(54329),
  TRUST_PROXY: z.string().optional(),
  STRIPE_SECRET_KEY: z.string().optional(),
  STRIPE_WEBHOOK_SECRET: z.string().optional(),
  STRIPE_API_URL: z.string().url().optional(),
  STRIPE_PRICE_PRO_MONTHLY: z.string().optional(),
  STRIPE_PRICE_PRO_YEARLY: z.string().optional(),
  // Gateway: the operator's upstream keys (credit-paid calls) and per-provider base URL overrides.
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  GEMINI_API_KEY: z.string().optional(),
  GEMINI_BASE_URL: z.string().url().optional(),
  VERTEX_BASE_URL: z.string().url().optional(),
  AWS_BEARER_TOKEN_BEDROCK: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_SESSION_TOKEN: z.string().optional(),
  BEDROCK_REGION: z.string().default('us-east-1'),
  BEDROCK_BASE_URL: z.string().url().optional(),
  BEDROCK_RUNTIME_BASE_URL: z.string().url().optional(),
  BEDROCK_INFERENCE_PROFILE: z.enum(['global', 'us', 'eu', 'apac', 'jp', 'au', 'us-gov', 'none']).default('global'),
  AZURE_OPENAI_API_KEY: z.string().optional(),
  AZURE_OPENAI_RESOURCE: z.string().optional(),
  AZURE_OPENAI_API_VERSION: z.string().default('2024-10-21'),
  AZURE_OPENAI_BASE_URL: z.string().url().optional(),
  DASHSCOPE_API_KEY: z.string().optional(),
  DASHSCOPE_BASE_URL: z.string().url().optional(),
  GATEWAY_UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  GATEWAY_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(10 * 1024 * 1024),
  GATEWAY_BATCH_WINDOW_MS: z.coerce.number().int().min(0).max(1000).default(200),
  /** Spend-limit leases expire this long after their instance's last heartbeat (heartbeats every sixth of it). */
  GATEWAY_LEASE_TTL_MS: z.coerce.number().int().min(3000).max(3_600_000).default(60_000),
  /** Let organizations' custom providers point at loopback/private/link-local addresses (tests, demo, on-premise). */
  METRICS_TOKEN: z.string().optional(),
  // OpenTelemetry traces (OTLP over HTTP); off unless an endpoint is set.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional().or(z.literal('')),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional().or(z.literal('')),
  OTEL_SERVICE_NAME: z.string().min(1).default('llm-gateway'),
  GATEWAY_ALLOW_PRIVATE_UPSTREAMS: z.enum(['true', 'false', '1', '0', ''], { message: 'GATEWAY_ALLOW_PRIVATE_UPSTREAMS is true or false' }).default('false'),
  /** Webhook retries: the waits after each failed attempt (docs/webhooks.md); tests compress them. */
  WEBHOOK_RETRY_SCHEDULE: z.string().regex(DURATION_LIST, { message: 'WEBHOOK_RETRY_SCHEDULE is a comma-separated list of durations such as 5s,30s,2m,1h' }).default(DEFAULT_WEBHOOK_RETRY_SCHEDULE),
  /** An endpoint failing for this long is disabled and its owners are told. */
  WEBHOOK_DISABLE_AFTER: z.string().regex(DURATION, { message: 'WEBHOOK_DISABLE_AFTER is a duration such as 24h' }).default('24h'),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** How often the webhook retry worker looks for due retries (pg-boss polling; at least 0.5). */
  WEBHOOK_POLL_SECONDS: z.coerce.number().min(0.5).max(60).default(2),
  /** How often open WebSockets' sessions are checked for expiry (ms). */
  SOCKET_SESSION_CHECK_MS: z.coerce.number().int().min(100).max(24 * 3600_000).default(600_000),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  port: number;
  /** Server processes `npm start` runs (node:cluster, sharing the port); 1 runs the server in this process. */
  workers: number;
  host: string;
  databaseUrl?: string;
  dataDir: string;
  /** Public base URL, used in every emailed link and redirect. Defaults to http://localhost:PORT. */
  appUrl?: string;
  /** APP_ALLOWED_ORIGINS: further origins of the dashboard that a checkout may return to (server/auth/app-url.ts). */
  allowedOrigins: string[];
  appSecret?: string;
  smtpUrl?: string;
  mailFrom: string;
  logLevel: Env['LOG_LEVEL'];
  embeddedPgPort: number;
  /** Fastify's trustProxy: true, false, or addresses/CIDRs (comma-separated). Default: loopback only. */
  trustProxy: boolean | string;
  socketSessionCheckMs: number;
  /** When set, GET /metrics asks for `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** OpenTelemetry traces: on when an OTLP endpoint is set (server/observability/tracing.ts). */
  otel: { endpoint?: string; tracesEndpoint?: string; serviceName: string };
  stripe: {
    secretKey?: string;
    webhookSecret?: string;
    /** Point the SDK at a Stripe-compatible server (tests, local mocks). */
    apiUrl?: string;
    priceProMonthly?: string;
    priceProYearly?: string;
  };
  gateway: GatewayConfig;
  webhooks: WebhookConfig;
}

/** Webhook delivery timing (docs/webhooks.md). URLs follow gateway.allowPrivateUpstreams. */
export interface WebhookConfig {
  /** The wait after each failed attempt; after the last one the delivery is given up. */
  retryScheduleMs: number[];
  /** An endpoint whose attempts have all failed for this long is disabled. */
  disableAfterMs: number;
  /** Per attempt: until the response is complete. */
  timeoutMs: number;
  pollingIntervalSeconds: number;
}

/** One upstream provider as the operator configured it (key may be absent: then only organizations' own keys serve it). */
export interface OperatorUpstream {
  /** The first of apiKeys (kept for readers that only ask whether the operator serves this provider). */
  apiKey?: string;
  /** The operator's key pool for this provider: `OPENAI_API_KEY=k1,k2` gives two keys that share the calls. */
  apiKeys?: string[];
  baseUrl?: string;
}

/** A comma-separated key variable as a key pool (blank entries dropped); empty when unset. */
export function keyPool(value: string | undefined): string[] {
  return (value ?? '').split(',').map((k) => k.trim()).filter(Boolean);
}
const operator = (value: string | undefined, baseUrl: string | undefined): OperatorUpstream => {
  const apiKeys = keyPool(value);
  return { apiKey: apiKeys[0], apiKeys, baseUrl };
};

export interface GatewayConfig {
  openai: OperatorUpstream;
  anthropic: OperatorUpstream;
  google: OperatorUpstream;
  vertexBaseUrl?: string;
  /** baseUrl: the OpenAI-compatible endpoint; runtimeBaseUrl: InvokeModel (Claude). */
  bedrock: OperatorUpstream & { region: string; runtimeBaseUrl?: string; inferenceProfile: string };
  azure: OperatorUpstream & { resource?: string; apiVersion: string };
  alibaba: OperatorUpstream;
  /** Until upstream response headers, and the longest silence inside a stream, before a 504. */
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  /** How long the usage batcher waits for more records before committing (group commit). */
  batchWindowMs: number;
  /** Spend-limit leases: an instance that stops heartbeating loses them this long after (server/modules/limits/engine.ts). */
  leaseTtlMs: number;
  /**
   * Organizations' base URLs may resolve to loopback, private, link-local or unique-local addresses.
   * Off by default: a tenant's URL must not reach the operator's network (the operator's own *_BASE_URL are trusted regardless).
   */
  allowPrivateUpstreams: boolean;
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid environment: ${problems}`);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production' && !e.APP_SECRET) throw new Error('APP_SECRET is required when NODE_ENV=production');
  if (e.NODE_ENV === 'production' && !e.STRIPE_SECRET_KEY) {
    throw new Error('STRIPE_SECRET_KEY is required when NODE_ENV=production (the local test-payment provider is for development only)');
  }
  if (e.STRIPE_SECRET_KEY && !e.STRIPE_WEBHOOK_SECRET) throw new Error('STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY');
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    // auto: one per core, at most 8 (each worker holds up to about 25 database connections).
    workers: e.WORKERS === 'auto' ? Math.min(availableParallelism(), 8) : Number(e.WORKERS),
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    appUrl: e.APP_URL,
    allowedOrigins: parseOrigins(e.APP_ALLOWED_ORIGINS),
    appSecret: e.APP_SECRET,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    logLevel: e.LOG_LEVEL,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    socketSessionCheckMs: e.SOCKET_SESSION_CHECK_MS,
    metricsToken: e.METRICS_TOKEN || null,
    otel: { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT || undefined, tracesEndpoint: e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || undefined, serviceName: e.OTEL_SERVICE_NAME },
    stripe: {
      secretKey: e.STRIPE_SECRET_KEY || undefined,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET || undefined,
      apiUrl: e.STRIPE_API_URL,
      priceProMonthly: e.STRIPE_PRICE_PRO_MONTHLY,
      priceProYearly: e.STRIPE_PRICE_PRO_YEARLY,
    },
    gateway: {
      // Each *_API_KEY may list several keys, comma-separated: the operator's key pool for that provider.
      openai: operator(e.OPENAI_API_KEY, e.OPENAI_BASE_URL),
      anthropic: operator(e.ANTHROPIC_API_KEY, e.ANTHROPIC_BASE_URL),
      google: operator(e.GEMINI_API_KEY, e.GEMINI_BASE_URL),
      vertexBaseUrl: e.VERTEX_BASE_URL,
      bedrock: {
        // A Bedrock API key, else an IAM access key (signs Claude calls with SigV4), as the provider keys hold them.
        // Several Bedrock API keys: comma-separated, like the other providers' pools.
        ...operator(
          e.AWS_BEARER_TOKEN_BEDROCK ||
            (e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY ? [e.AWS_ACCESS_KEY_ID, e.AWS_SECRET_ACCESS_KEY, ...(e.AWS_SESSION_TOKEN ? [e.AWS_SESSION_TOKEN] : [])].join(':') : undefined),
          e.BEDROCK_BASE_URL,
        ),
        runtimeBaseUrl: e.BEDROCK_RUNTIME_BASE_URL,
        region: e.BEDROCK_REGION,
        inferenceProfile: e.BEDROCK_INFERENCE_PROFILE,
      },
      azure: { ...operator(e.AZURE_OPENAI_API_KEY, e.AZURE_OPENAI_BASE_URL), resource: e.AZURE_OPENAI_RESOURCE, apiVersion: e.AZURE_OPENAI_API_VERSION },
      alibaba: operator(e.DASHSCOPE_API_KEY, e.DASHSCOPE_BASE_URL),
      upstreamTimeoutMs: e.GATEWAY_UPSTREAM_TIMEOUT_MS,
      maxBodyBytes: e.GATEWAY_MAX_BODY_BYTES,
      batchWindowMs: e.GATEWAY_BATCH_WINDOW_MS,
      leaseTtlMs: e.GATEWAY_LEASE_TTL_MS,
      allowPrivateUpstreams: e.GATEWAY_ALLOW_PRIVATE_UPSTREAMS === 'true' || e.GATEWAY_ALLOW_PRIVATE_UPSTREAMS === '1',
    },
    webhooks: {
      retryScheduleMs: e.WEBHOOK_RETRY_SCHEDULE.split(',').map(parseDuration),
      disableAfterMs: parseDuration(e.WEBHOOK_DISABLE_AFTER),
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      pollingIntervalSeconds: e.WEBHOOK_POLL_SECONDS,
    },
  };
}

function parseOrigins(value: string | undefined): string[] {
  const origins: string[] = [];
  for (const part of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new Error(`invalid environment: APP_ALLOWED_ORIGINS: "${part}" is not a URL (write origins like https://app.example.com, comma-separated)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`invalid environment: APP_ALLOWED_ORIGINS: "${part}" is not an http(s) origin`);
    origins.push(url.origin);
  }
  return origins;
}

function parseTrustProxy(value: string | undefined): boolean | string {
  if (value === undefined || value === '') return 'loopback';
  if (value === 'true' || value === 'false') return value === 'true';
  return value;
}
