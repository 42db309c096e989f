import { Migration } from '@mikro-orm/migrations';

/**
 * The browser origins a project's API keys may be used from (CORS on /v1). Empty: any origin.
 * Existing projects get the empty list; new ones are created with it (no column default, as the
 * entity says).
 */
export class Migration20261202070000ProjectAllowedOrigins extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "project" add column "allowed_origins" text[] not null default '{}';`);
    this.addSql(`alter table "project" alter column "allowed_origins" drop default;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "project" drop column "allowed_origins";`);
  }
}
