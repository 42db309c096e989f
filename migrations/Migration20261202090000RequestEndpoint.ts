import { Migration } from '@mikro-orm/migrations';

/**
 * Which API each call came through (chat completions, Anthropic messages, OpenAI responses,
 * embeddings): a column on the request log, and a dimension of the per-key rollups so analytics
 * can break usage down by endpoint. Existing rows are chat completions, the only endpoint so far.
 */
export class Migration20261202090000RequestEndpoint extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "request_log" add column "endpoint" varchar(40) not null default 'chat.completions';`);
    this.addSql(`alter table "usage_rollup" add column "endpoint" varchar(40) not null default 'chat.completions';`);
    this.addSql(`alter table "usage_rollup" drop constraint "usage_rollup_pkey";`);
    this.addSql(`alter table "usage_rollup" add constraint "usage_rollup_pkey" primary key ("org_id", "hour", "project_id", "api_key_id", "provider", "model", "endpoint");`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from "usage_rollup" where "endpoint" <> 'chat.completions';`);
    this.addSql(`alter table "usage_rollup" drop constraint "usage_rollup_pkey";`);
    this.addSql(`alter table "usage_rollup" drop column "endpoint";`);
    this.addSql(`alter table "usage_rollup" add constraint "usage_rollup_pkey" primary key ("org_id", "hour", "project_id", "api_key_id", "provider", "model");`);
    this.addSql(`alter table "request_log" drop column "endpoint";`);
  }
}
