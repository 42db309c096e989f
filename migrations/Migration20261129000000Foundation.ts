import { Migration } from '@mikro-orm/migrations';

/** Accounts, organizations, projects, team, audit log, live events, email outbox. */
export class Migration20261129000000Foundation extends Migration {
  override async up(): Promise<void> {
    // Foreign keys are checked at commit: entities carry plain id columns, so MikroORM does not order inserts by relation.
    this.addSql(`create table "app_user" (
      "id" uuid primary key, "email" varchar(255) not null constraint "app_user_email_unique" unique,
      "name" varchar(255) not null, "password_hash" varchar(255) not null,
      "totp_secret" varchar(255) null, "totp_pending_secret" varchar(255) null,
      "organization_limit" int null, "created_at" timestamptz not null);`);

    this.addSql(`create table "session" (
      "id" varchar(255) primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "secret_hash" bytea not null, "created_at" timestamptz not null, "last_verified_at" timestamptz not null,
      "user_agent" varchar(255) null);`);
    this.addSql(`create index "session_user_id_index" on "session" ("user_id");`);

    this.addSql(`create table "api_token" (
      "id" varchar(255) primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "name" varchar(255) not null, "secret_hash" bytea not null, "created_at" timestamptz not null,
      "last_used_at" timestamptz null);`);
    this.addSql(`create index "api_token_user_id_index" on "api_token" ("user_id");`);

    this.addSql(`create table "organization" (
      "id" uuid primary key, "name" varchar(255) not null, "billing_email" varchar(255) null,
      "plan" text not null check ("plan" in ('free', 'pro', 'enterprise')),
      "billing_cycle" varchar(255) null,
      "retention_level" text not null check ("retention_level" in ('none', 'retain')),
      "credits_nanos" bigint not null default 0, "project_limit" int null,
      "version" int not null default 1, "created_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "created_at" timestamptz not null);`);

    this.addSql(`create table "membership" (
      "id" uuid primary key, "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "role" text not null check ("role" in ('owner', 'admin', 'developer')), "created_at" timestamptz not null,
      constraint "membership_org_id_user_id_unique" unique ("org_id", "user_id"));`);
    this.addSql(`create index "membership_user_id_index" on "membership" ("user_id");`);

    this.addSql(`create table "project" (
      "id" uuid primary key, "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "name" varchar(255) not null, "is_default" boolean not null default false,
      "mode" text not null check ("mode" in ('credits', 'provider-keys', 'hybrid')),
      "caching_enabled" boolean not null default false, "cache_ttl_seconds" int not null default 300,
      "created_at" timestamptz not null);`);
    this.addSql(`create index "project_org_id_index" on "project" ("org_id");`);

    this.addSql(`create table "invitation" (
      "id" uuid primary key, "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "email" varchar(255) not null, "role" text not null check ("role" in ('owner', 'admin', 'developer')),
      "token_hash" varchar(255) not null constraint "invitation_token_hash_unique" unique,
      "invited_by" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "expires_at" timestamptz not null, "accepted_at" timestamptz null,
      "accepted_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "revoked_at" timestamptz null, "created_at" timestamptz not null);`);
    this.addSql(`create index "invitation_org_id_index" on "invitation" ("org_id");`);

    this.addSql(`create table "audit_log" (
      "id" bigserial primary key, "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "actor_id" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "action" varchar(255) not null, "target_type" varchar(255) not null, "target_id" varchar(255) null,
      "before" jsonb null, "after" jsonb null, "created_at" timestamptz not null);`);
    this.addSql(`create index "audit_log_org_id_id_index" on "audit_log" ("org_id", "id" desc);`);

    this.addSql(`create table "org_event" (
      "id" bigserial primary key, "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "type" varchar(255) not null, "payload" jsonb not null, "actor_id" uuid null, "created_at" timestamptz not null);`);
    this.addSql(`create index "org_event_org_id_id_index" on "org_event" ("org_id", "id");`);
    this.addSql(`create index "org_event_created_at_index" on "org_event" ("created_at");`);

    this.addSql(`create table "email_outbox" (
      "id" uuid primary key, "recipient" varchar(255) not null, "subject" varchar(255) not null, "body" text not null,
      "status" text not null check ("status" in ('pending', 'sent', 'logged', 'failed')),
      "error" text null, "created_at" timestamptz not null, "sent_at" timestamptz null);`);

    // Fixed-window counters for sign-in rate limits, shared by every instance.
    this.addSql(`create table "rate_limit" ("key" varchar(300) primary key, "window_start" timestamptz not null, "count" int not null);`);

    // Who is looking at which organization now (rows expire by seen_at).
    this.addSql(`create table "presence" (
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "connection_id" varchar(100) not null, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "page" varchar(100) not null, "seen_at" timestamptz not null, primary key ("org_id", "connection_id"));`);
  }

  override async down(): Promise<void> {
    for (const t of ['presence', 'rate_limit', 'email_outbox', 'org_event', 'audit_log', 'invitation', 'project', 'membership', 'organization', 'api_token', 'session', 'app_user']) {
      this.addSql(`drop table if exists "${t}" cascade;`);
    }
  }
}
