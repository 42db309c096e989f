import { Migration } from '@mikro-orm/migrations';

/**
 * Spend-limit alerts (issue #12): per limit (an API key's spend limit, a member's budget, the
 * organization's daily or monthly cap), the highest threshold (50, 80, 100%) already notified in its
 * current period at its current amount. A new period or a changed amount re-arms every threshold.
 */
export class Migration20261203050000LimitAlerts extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "limit_alert" ("org_id" uuid not null, "scope" text check ("scope" in ('apiKey', 'member', 'dailyCap', 'monthlyCap')) not null, "subject_id" uuid not null, "period_start" timestamptz not null, "limit_nanos" bigint not null, "notified_threshold" int not null, "notified_at" timestamptz not null, constraint "limit_alert_pkey" primary key ("org_id", "scope", "subject_id"));`);
    this.addSql(`alter table "limit_alert" add constraint "limit_alert_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "limit_alert" cascade;`);
  }
}
