import { Migration } from '@mikro-orm/migrations';

/**
 * Usage batches already applied: the meter claims a batch's id in the transaction that writes it,
 * so a batch retried after its commit's reply was lost is a no-op instead of a second charge.
 */
export class Migration20261201100000UsageBatch extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "usage_batch" ("id" varchar(255) primary key, "created_at" timestamptz not null);`);
    this.addSql(`create index "usage_batch_created_at_index" on "usage_batch" ("created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_batch";`);
  }
}
