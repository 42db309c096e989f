import { Migration } from '@mikro-orm/migrations';

/**
 * A project's routing settings (issue #11, project.update {routing}): strategy, attempts at most and
 * fallback chains per model, as given; `{}` means the defaults (server/modules/gateway/runtime.ts
 * DEFAULT_ROUTING fills what is left out).
 */
export class Migration20261203020100ProjectRouting extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "project" add column "routing" jsonb not null default '{}';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "project" drop column "routing";`);
  }
}
