import { Migration } from '@mikro-orm/migrations';

/** Billing: the credit ledger, billing state of organizations, Stripe events, auto top-up, budget alerts. */
export class Migration20261129010000Billing extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "credit_ledger" (
      "id" bigserial primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "type" text not null check ("type" in ('purchase', 'usage', 'usage_credit', 'refund', 'auto_topup', 'adjustment', 'plan_charge')),
      "amount_nanos" bigint not null,
      "balance_after_nanos" bigint not null,
      "status" text not null default 'completed' check ("status" in ('completed', 'pending', 'failed')),
      "description" varchar(500) not null,
      "actor_id" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "stripe_event_id" varchar(255) null,
      "payment_intent_id" varchar(255) null,
      "invoice_id" varchar(255) null,
      "refund_id" varchar(255) null,
      "request_count" int null,
      "related_entry_id" bigint null references "credit_ledger" ("id") on delete set null deferrable initially deferred,
      "created_at" timestamptz not null);`);
    this.addSql(`create index "credit_ledger_org_id_id_index" on "credit_ledger" ("org_id", "id" desc);`);
    // A payment intent credits an organization at most once (purchases, auto top-ups).
    this.addSql(`create unique index "credit_ledger_payment_intent_unique" on "credit_ledger" ("payment_intent_id") where "payment_intent_id" is not null and "type" in ('purchase', 'auto_topup') and "status" = 'completed';`);
    this.addSql(`create unique index "credit_ledger_refund_unique" on "credit_ledger" ("refund_id") where "refund_id" is not null;`);
    this.addSql(`create unique index "credit_ledger_credit_back_unique" on "credit_ledger" ("related_entry_id") where "type" = 'usage_credit';`);

    // Billing state of an organization.
    this.addSql(`alter table "organization"
      add column "stripe_customer_id" varchar(255) null,
      add column "default_payment_method_id" varchar(255) null,
      add column "auto_top_up_enabled" boolean not null default false,
      add column "auto_top_up_threshold_nanos" bigint not null default 10000000000,
      add column "auto_top_up_amount_nanos" bigint not null default 50000000000,
      add column "auto_top_up_disabled_reason" varchar(500) null,
      add column "subscription_id" varchar(255) null,
      add column "subscription_status" varchar(50) null,
      add column "subscription_period_end" timestamptz null,
      add column "subscription_cancel_at_period_end" boolean not null default false;`);
    this.addSql(`create unique index "organization_stripe_customer_unique" on "organization" ("stripe_customer_id") where "stripe_customer_id" is not null;`);

    // Each Stripe event is applied exactly once.
    this.addSql(`create table "stripe_event" ("id" varchar(255) primary key, "type" varchar(255) not null, "org_id" uuid null, "processed_at" timestamptz not null);`);

    // Auto top-up attempts. At most one in flight per organization, across every instance.
    this.addSql(`create table "auto_top_up_attempt" (
      "id" uuid primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "status" text not null check ("status" in ('pending', 'succeeded', 'failed', 'requires_action')),
      "amount_nanos" bigint not null,
      "payment_intent_id" varchar(255) null,
      "failure_reason" varchar(500) null,
      "next_retry_at" timestamptz null,
      "created_at" timestamptz not null, "updated_at" timestamptz not null);`);
    this.addSql(`create unique index "auto_top_up_one_in_flight" on "auto_top_up_attempt" ("org_id") where "status" = 'pending';`);
    this.addSql(`create index "auto_top_up_attempt_org_created_index" on "auto_top_up_attempt" ("org_id", "created_at" desc);`);

    // Budget alerts: notify once per crossing, re-arm when the condition clears.
    this.addSql(`create table "budget_alert" (
      "id" uuid primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "kind" text not null check ("kind" in ('balance_below', 'monthly_spend_above')),
      "threshold_nanos" bigint not null,
      "triggered" boolean not null default false,
      "last_triggered_at" timestamptz null,
      "created_at" timestamptz not null,
      constraint "budget_alert_org_kind_unique" unique ("org_id", "kind"));`);

    // The local test-payment provider's objects (a Stripe-compatible fake; never used in production).
    this.addSql(`create table "test_stripe_object" ("id" varchar(255) primary key, "type" varchar(100) not null, "data" jsonb not null, "created_at" timestamptz not null default now());`);
    this.addSql(`create index "test_stripe_object_type_index" on "test_stripe_object" ("type");`);
  }

  override async down(): Promise<void> {
    for (const t of ['test_stripe_object', 'budget_alert', 'auto_top_up_attempt', 'stripe_event']) this.addSql(`drop table if exists "${t}" cascade;`);
    this.addSql(`alter table "organization" drop column "stripe_customer_id", drop column "default_payment_method_id", drop column "auto_top_up_enabled",
      drop column "auto_top_up_threshold_nanos", drop column "auto_top_up_amount_nanos", drop column "auto_top_up_disabled_reason",
      drop column "subscription_id", drop column "subscription_status", drop column "subscription_period_end", drop column "subscription_cancel_at_period_end";`);
    this.addSql(`drop table if exists "credit_ledger" cascade;`);
  }
}
