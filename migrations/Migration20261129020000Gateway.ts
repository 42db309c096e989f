import { Migration } from '@mikro-orm/migrations';
/** Latency histogram buckets of the rollups (bounds in server/modules/usage/histogram.ts). */
const LATENCY_BUCKETS = 32;
const bucketColumns = (type: string) => Array.from({ length: LATENCY_BUCKETS }, (_, i) => `"lat_b${i}" ${type} not null default 0`).join(', ');

/** The gateway: project API keys, provider keys, request logs, hourly rollups, the response cache. */
export class Migration20261129020000Gateway extends Migration {
  override async up(): Promise<void> {
    // Gateway keys of a project. Only SHA-256 of the key is stored; `prefix` is what people see.
    this.addSql(`create table "api_key" (
      "id" uuid primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "project_id" uuid not null references "project" ("id") on delete cascade deferrable initially deferred,
      "name" varchar(80) not null, "prefix" varchar(20) not null,
      "key_hash" bytea not null constraint "api_key_key_hash_unique" unique,
      "rpm_limit" int null,
      "created_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "created_at" timestamptz not null, "last_used_at" timestamptz null,
      "revoked_at" timestamptz null, "revoked_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred);`);
    this.addSql(`create index "api_key_project_id_index" on "api_key" ("project_id", "created_at" desc);`);
    this.addSql(`create index "api_key_org_id_index" on "api_key" ("org_id");`);

    // Organization-wide upstream keys, sealed with AES-256-GCM (SecretBox); only the last 4 are ever shown.
    this.addSql(`create table "provider_key" (
      "id" uuid primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "provider" text not null check ("provider" in ('openai', 'anthropic', 'google', 'vertex', 'bedrock', 'azure', 'alibaba', 'custom')),
      "name" varchar(40) not null, "base_url" varchar(500) null, "options" jsonb not null default '{}',
      "sealed_key" text not null, "last4" varchar(4) not null,
      "status" text not null default 'active' check ("status" in ('active', 'disabled')),
      "created_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "created_at" timestamptz not null, "updated_at" timestamptz not null,
      constraint "provider_key_org_name_unique" unique ("org_id", "name"));`);

    // One row per gateway call. Bodies only when the organization's retention level is 'retain'.
    this.addSql(`create table "request_log" (
      "id" bigserial primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "project_id" uuid not null, "api_key_id" uuid not null,
      "provider" varchar(40) not null, "model" varchar(200) not null,
      "input_tokens" int not null default 0, "output_tokens" int not null default 0, "cached_tokens" int not null default 0,
      "cost_nanos" bigint not null default 0,
      "paid_by" text not null check ("paid_by" in ('credits', 'provider_key', 'cache', 'none')),
      "latency_ms" int not null, "ttft_ms" int null, "status" smallint not null, "error" varchar(1000) null,
      "cached" boolean not null default false, "streamed" boolean not null default false, "canceled" boolean not null default false,
      "request_body" jsonb null, "response_body" jsonb null,
      "created_at" timestamptz not null);`);
    this.addSql(`create index "request_log_org_id_id_index" on "request_log" ("org_id", "id" desc);`);
    this.addSql(`create index "request_log_project_id_id_index" on "request_log" ("project_id", "id" desc);`);
    this.addSql(`create index "request_log_created_at_index" on "request_log" ("created_at");`);
    // Finds bodies to clear when an organization's retention level drops to 'none'.
    this.addSql(`create index "request_log_with_body_index" on "request_log" ("org_id") where "request_body" is not null or "response_body" is not null;`);

    // Hourly rollups, written in the same transaction as the logs; analytics read only these.
    this.addSql(`create table "usage_rollup" (
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "hour" timestamptz not null, "project_id" uuid not null, "api_key_id" uuid not null,
      "provider" varchar(40) not null, "model" varchar(200) not null,
      "requests" int not null default 0, "errors" int not null default 0, "cache_hits" int not null default 0,
      "canceled" int not null default 0, "streamed" int not null default 0,
      "input_tokens" bigint not null default 0, "output_tokens" bigint not null default 0, "cached_tokens" bigint not null default 0,
      "cost_nanos" bigint not null default 0, "charged_nanos" bigint not null default 0,
      "latency_sum_ms" bigint not null default 0, "ttft_sum_ms" bigint not null default 0, "ttft_count" int not null default 0,
      ${bucketColumns('int')},
      primary key ("org_id", "hour", "project_id", "api_key_id", "provider", "model"));`);

    // The same sums per project and hour (no key/provider/model): summaries and time series read these.
    this.addSql(`create table "usage_rollup_project" (
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "hour" timestamptz not null, "project_id" uuid not null,
      "requests" int not null default 0, "errors" int not null default 0, "cache_hits" int not null default 0,
      "canceled" int not null default 0, "streamed" int not null default 0,
      "input_tokens" bigint not null default 0, "output_tokens" bigint not null default 0, "cached_tokens" bigint not null default 0,
      "cost_nanos" bigint not null default 0, "charged_nanos" bigint not null default 0,
      "latency_sum_ms" bigint not null default 0, "ttft_sum_ms" bigint not null default 0, "ttft_count" int not null default 0,
      ${bucketColumns('int')},
      primary key ("org_id", "hour", "project_id"));`);

    // Cached responses of non-streaming requests, shared by every instance.
    this.addSql(`create table "response_cache" (
      "project_id" uuid not null references "project" ("id") on delete cascade deferrable initially deferred,
      "key_hash" bytea not null, "provider" varchar(40) not null, "model" varchar(200) not null,
      "response" jsonb not null, "input_tokens" int not null, "output_tokens" int not null, "cached_tokens" int not null,
      "created_at" timestamptz not null, "expires_at" timestamptz not null,
      primary key ("project_id", "key_hash"));`);
    this.addSql(`create index "response_cache_expires_at_index" on "response_cache" ("expires_at");`);
  }

  override async down(): Promise<void> {
    for (const t of ['response_cache', 'usage_rollup_project', 'usage_rollup', 'request_log', 'provider_key', 'api_key']) this.addSql(`drop table if exists "${t}" cascade;`);
  }
}
