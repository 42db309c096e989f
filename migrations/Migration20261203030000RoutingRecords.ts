import { Migration } from '@mikro-orm/migrations';

/**
 * Routing records (issue #11): each call's upstream attempts on its request log row (null when it
 * had at most one, so the common path stores nothing extra), the rollups' counts of calls that
 * needed more than one attempt (`retried`) and of calls answered by another provider or model than
 * their first attempt's (`fell_back`), and each provider key's share of its provider's calls
 * (`weight`, 1..100, checked by the service). Adding a column to the partitioned request log adds
 * it to every partition.
 */
export class Migration20261203030000RoutingRecords extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "request_log" add column "attempts" jsonb null;`);
    for (const table of ['usage_rollup', 'usage_rollup_project']) {
      this.addSql(`alter table "${table}" add column "retried" int not null default 0, add column "fell_back" int not null default 0;`);
    }
    this.addSql(`alter table "provider_key" add column "weight" int not null default 1;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "provider_key" drop column "weight";`);
    for (const table of ['usage_rollup_project', 'usage_rollup']) {
      this.addSql(`alter table "${table}" drop column "fell_back", drop column "retried";`);
    }
    this.addSql(`alter table "request_log" drop column "attempts";`);
  }
}
