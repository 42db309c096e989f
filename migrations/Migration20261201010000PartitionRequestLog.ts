import { Migration } from '@mikro-orm/migrations';

/** The request log's columns, in table order (shared by up and down). */
const COLUMNS = `"id" bigint not null default nextval('request_log_id_seq'),
      "org_id" uuid not null constraint "request_log_org_id_fkey" references "organization" ("id") on delete cascade deferrable initially deferred,
      "project_id" uuid not null, "api_key_id" uuid not null,
      "provider" varchar(40) not null, "model" varchar(200) not null,
      "input_tokens" int not null default 0, "output_tokens" int not null default 0, "cached_tokens" int not null default 0,
      "cost_nanos" bigint not null default 0,
      "paid_by" text not null constraint "request_log_paid_by_check" check ("paid_by" in ('credits', 'provider_key', 'cache', 'none')),
      "latency_ms" int not null, "ttft_ms" int null, "status" smallint not null, "error" varchar(1000) null,
      "cached" boolean not null default false, "streamed" boolean not null default false, "canceled" boolean not null default false,
      "request_body" jsonb null, "response_body" jsonb null,
      "created_at" timestamptz not null,
      "cache_write_tokens" int not null default 0`;
const NAMES = `"id", "org_id", "project_id", "api_key_id", "provider", "model", "input_tokens", "output_tokens", "cached_tokens", "cost_nanos",
  "paid_by", "latency_ms", "ttft_ms", "status", "error", "cached", "streamed", "canceled", "request_body", "response_body", "created_at", "cache_write_tokens"`;

function indexes(): string[] {
  return [
    `create index "request_log_org_id_id_index" on "request_log" ("org_id", "id" desc);`,
    `create index "request_log_project_id_id_index" on "request_log" ("project_id", "id" desc);`,
    `create index "request_log_created_at_index" on "request_log" ("created_at");`,
    `create index "request_log_with_body_index" on "request_log" ("org_id") where "request_body" is not null or "response_body" is not null;`,
  ];
}

/**
 * The request log is partitioned by day on created_at (PostgreSQL declarative partitioning), so
 * retention drops whole days instead of deleting rows (server/modules/usage/retention.ts). Daily
 * partitions are named request_log_pYYYYMMDD and cover [day, day + 1) in UTC; the job runner creates
 * them 7 days ahead (server/db/partitions.ts); `request_log_default` takes anything outside them.
 * The primary key becomes (id, created_at): nothing references request_log, and ids still come from
 * the same sequence. Existing rows are copied over: this migration creates a partition for each day
 * of the last 100 with rows (older rows land in the default partition) and the next 7 days.
 */
export class Migration20261201010000PartitionRequestLog extends Migration {
  override async up(): Promise<void> {
    // Keep the id sequence when the old table goes.
    this.addSql(`alter sequence "request_log_id_seq" owned by none;`);
    this.addSql(`alter table "request_log" rename to "request_log_unpartitioned";`);
    // Index names are schema-wide: free the primary key's (the constraints are named explicitly below).
    this.addSql(`alter table "request_log_unpartitioned" rename constraint "request_log_pkey" to "request_log_unpartitioned_pkey";`);
    for (const index of ['request_log_org_id_id_index', 'request_log_project_id_id_index', 'request_log_created_at_index', 'request_log_with_body_index']) {
      this.addSql(`drop index "${index}";`);
    }
    this.addSql(`create table "request_log" (${COLUMNS},
      primary key ("id", "created_at")) partition by range ("created_at");`);
    this.addSql(`alter sequence "request_log_id_seq" owned by "request_log"."id";`);
    for (const sql of indexes()) this.addSql(sql);
    this.addSql(`create table "request_log_default" partition of "request_log" default;`);
    this.addSql(`do $$
      declare
        today date := (now() at time zone 'utc')::date;
        first date := greatest(coalesce((select min(created_at at time zone 'utc')::date from request_log_unpartitioned), today), today - 100);
        d date;
      begin
        d := least(first, today);
        while d <= today + 7 loop
          if d >= today or exists (select 1 from request_log_unpartitioned
                                    where created_at >= (d::timestamp at time zone 'utc') and created_at < ((d + 1)::timestamp at time zone 'utc')) then
            execute format('create table %I partition of request_log for values from (%L) to (%L)',
              'request_log_p' || to_char(d, 'YYYYMMDD'), (d::timestamp at time zone 'utc'), ((d + 1)::timestamp at time zone 'utc'));
          end if;
          d := d + 1;
        end loop;
      end $$;`);
    this.addSql(`insert into "request_log" (${NAMES}) select ${NAMES} from "request_log_unpartitioned";`);
    this.addSql(`drop table "request_log_unpartitioned";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter sequence "request_log_id_seq" owned by none;`);
    this.addSql(`alter table "request_log" rename to "request_log_partitioned";`);
    this.addSql(`alter table "request_log_partitioned" rename constraint "request_log_pkey" to "request_log_partitioned_pkey";`);
    for (const index of ['request_log_org_id_id_index', 'request_log_project_id_id_index', 'request_log_created_at_index', 'request_log_with_body_index']) {
      this.addSql(`drop index "${index}";`);
    }
    this.addSql(`create table "request_log" (${COLUMNS}, primary key ("id"));`);
    this.addSql(`alter sequence "request_log_id_seq" owned by "request_log"."id";`);
    for (const sql of indexes()) this.addSql(sql);
    this.addSql(`insert into "request_log" (${NAMES}) select ${NAMES} from "request_log_partitioned";`);
    this.addSql(`drop table "request_log_partitioned" cascade;`);
  }
}
