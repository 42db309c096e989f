import { Migration } from '@mikro-orm/migrations';

/** Request logs record prompt tokens written to the provider's cache (billed at the cache-write price). */
export class Migration20261129050000CacheWrites extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "request_log" add column "cache_write_tokens" int not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "request_log" drop column "cache_write_tokens";`);
  }
}
