import { Migration } from '@mikro-orm/migrations';

const BUCKETS = 32;
const buckets = (prefix: string) => Array.from({ length: BUCKETS }, (_, i) => `"${prefix}_b${i}" int not null default 0`).join(', ');

/**
 * Provider health shared by every gateway instance (issue #11): upstream attempts per organization,
 * provider, credential and minute, with latency and time-to-first-token histograms (the rollups'
 * buckets) and a credential's cool-down. Instances upsert their counts every few seconds and read
 * the recent minutes back; rows older than a day are deleted.
 */
export class Migration20261203020000ProviderHealth extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "provider_health" ("org_id" uuid not null, "provider" varchar(40) not null, "credential" varchar(80) not null, "minute" timestamptz not null, "calls" int not null default 0, "failures" int not null default 0, ${buckets('lat')}, ${buckets('ttft')}, "cooled_until" timestamptz null, constraint "provider_health_pkey" primary key ("org_id", "provider", "credential", "minute"));`);
    this.addSql(`create index "provider_health_minute_index" on "provider_health" ("minute");`);
    this.addSql(`alter table "provider_health" add constraint "provider_health_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "provider_health" cascade;`);
  }
}
