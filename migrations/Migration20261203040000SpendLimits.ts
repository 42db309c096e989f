import { Migration } from '@mikro-orm/migrations';

const PERIODS = `('lifetime', 'day', 'week', 'month')`;

/**
 * Spend limits (issue #12): an API key's spend limit, members' budgets (and the organization's
 * default for developers), the organization's daily and monthly caps on credits and its cap on calls
 * in flight; and the exact accounting behind them: per limit and period, what was spent and what the
 * gateway instances hold leased (spend_counter), and each instance's leases (spend_lease, reclaimed
 * when they expire: an instance that stopped heartbeating).
 */
export class Migration20261203040000SpendLimits extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "api_key"
      add column "spend_limit_nanos" bigint null,
      add column "spend_limit_period" text check ("spend_limit_period" in ${PERIODS}) null;`);
    this.addSql(`alter table "organization"
      add column "developer_budget_nanos" bigint null,
      add column "developer_budget_period" text check ("developer_budget_period" in ${PERIODS}) null,
      add column "daily_spend_cap_nanos" bigint null,
      add column "monthly_spend_cap_nanos" bigint null,
      add column "max_concurrent_calls" int null;`);
    this.addSql(`create table "member_budget" ("org_id" uuid not null, "user_id" uuid not null, "amount_nanos" bigint not null, "period" text check ("period" in ${PERIODS}) not null, "updated_at" timestamptz not null, constraint "member_budget_pkey" primary key ("org_id", "user_id"));`);
    this.addSql(`create index "member_budget_user_id_index" on "member_budget" ("user_id");`);
    this.addSql(`alter table "member_budget" add constraint "member_budget_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "member_budget" add constraint "member_budget_user_id_fkey" foreign key ("user_id") references "app_user" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`create table "spend_counter" ("scope" varchar(120) not null, "period_start" timestamptz not null, "org_id" uuid not null, "spent_nanos" bigint not null default 0, "leased_nanos" bigint not null default 0, constraint "spend_counter_pkey" primary key ("scope", "period_start"));`);
    this.addSql(`create index "spend_counter_org_id_index" on "spend_counter" ("org_id");`);
    this.addSql(`alter table "spend_counter" add constraint "spend_counter_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`create table "spend_lease" ("id" uuid not null, "scope" varchar(120) not null, "period_start" timestamptz not null, "org_id" uuid not null, "amount_nanos" bigint not null, "expires_at" timestamptz not null, constraint "spend_lease_pkey" primary key ("id"));`);
    this.addSql(`create index "spend_lease_scope_period_start_index" on "spend_lease" ("scope", "period_start");`);
    this.addSql(`create index "spend_lease_org_id_index" on "spend_lease" ("org_id");`);
    this.addSql(`alter table "spend_lease" add constraint "spend_lease_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "spend_lease" cascade;`);
    this.addSql(`drop table if exists "spend_counter" cascade;`);
    this.addSql(`drop table if exists "member_budget" cascade;`);
    this.addSql(`alter table "organization" drop column "developer_budget_nanos", drop column "developer_budget_period", drop column "daily_spend_cap_nanos", drop column "monthly_spend_cap_nanos", drop column "max_concurrent_calls";`);
    this.addSql(`alter table "api_key" drop column "spend_limit_nanos", drop column "spend_limit_period";`);
  }
}
