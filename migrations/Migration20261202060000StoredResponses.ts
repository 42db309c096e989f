import { Migration } from '@mikro-orm/migrations';

/**
 * Responses of translated models (POST /v1/responses to Anthropic, Google, ...), kept while the
 * organization retains bodies so `previous_response_id` and GET /v1/responses/{id} work for them:
 * scoped to organization and project, deleted with either.
 */
export class Migration20261202060000StoredResponses extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "stored_response" ("id" varchar(80) not null, "org_id" uuid not null, "project_id" uuid not null, "provider" varchar(40) not null, "model" varchar(200) not null, "items" jsonb not null, "response" jsonb not null, "created_at" timestamptz not null, constraint "stored_response_pkey" primary key ("id"));`);
    this.addSql(`create index "stored_response_created_at_index" on "stored_response" ("created_at");`);
    this.addSql(`create index "stored_response_org_id_index" on "stored_response" ("org_id");`);
    this.addSql(`create index "stored_response_project_id_index" on "stored_response" ("project_id");`);
    this.addSql(`alter table "stored_response" add constraint "stored_response_org_id_fkey" foreign key ("org_id") references "organization" ("id") on update no action on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "stored_response" add constraint "stored_response_project_id_fkey" foreign key ("project_id") references "project" ("id") on update no action on delete cascade deferrable initially deferred;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "stored_response" cascade;`);
  }
}
