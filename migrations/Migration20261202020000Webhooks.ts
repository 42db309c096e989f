import { Migration } from '@mikro-orm/migrations';

/**
 * Signed webhooks (docs/webhooks.md): an organization's endpoints (secret sealed with SecretBox,
 * the event types they take, the lease of the one dispatcher sending to each) and the delivery
 * outbox/log: one row per event per endpoint, written in the event's own transaction, `seq`
 * ordering each endpoint's queue.
 */
export class Migration20261202020000Webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "webhook_endpoint" ("id" uuid not null, "org_id" uuid not null, "url" varchar(1000) not null, "events" text[] not null, "enabled" boolean not null, "disabled_reason" varchar(500) null, "failing_since" timestamptz null, "sealed_secret" text not null, "lease_token" uuid null, "lease_until" timestamptz null, "created_by" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "webhook_endpoint_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_endpoint_org_id_index" on "webhook_endpoint" ("org_id");`);

    this.addSql(`create table "webhook_delivery" ("id" uuid not null, "seq" bigserial, "endpoint_id" uuid not null, "org_id" uuid not null, "event_id" uuid not null, "event_type" varchar(100) not null, "body" text not null, "status" text check ("status" in ('pending', 'delivered', 'failed')) not null, "attempts" int not null, "next_attempt_at" timestamptz not null, "last_attempt_at" timestamptz null, "response_status" int null, "last_error" varchar(1000) null, "duration_ms" int null, "delivered_at" timestamptz null, "redelivery_of" uuid null, "created_at" timestamptz not null, constraint "webhook_delivery_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_delivery_endpoint_id_seq_index" on "webhook_delivery" ("endpoint_id", "seq");`);
    this.addSql(`create index "webhook_delivery_status_next_attempt_at_index" on "webhook_delivery" ("status", "next_attempt_at");`);

    this.addSql(`alter table "webhook_endpoint" add constraint "webhook_endpoint_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "webhook_endpoint" add constraint "webhook_endpoint_created_by_fkey" foreign key ("created_by") references "app_user" ("id") on update no action on delete set null deferrable initially deferred;`);
    this.addSql(`alter table "webhook_delivery" add constraint "webhook_delivery_endpoint_id_fkey" foreign key ("endpoint_id") references "webhook_endpoint" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "webhook_delivery" add constraint "webhook_delivery_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "webhook_delivery" cascade;`);
    this.addSql(`drop table if exists "webhook_endpoint" cascade;`);
  }
}
