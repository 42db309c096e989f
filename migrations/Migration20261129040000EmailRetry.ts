import { Migration } from '@mikro-orm/migrations';

/** Emails are retried: how many attempts failed so far, and when the next one is due. */
export class Migration20261129040000EmailRetry extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "email_outbox" add column "attempts" int not null default 0, add column "next_attempt_at" timestamptz null;`);
    this.addSql(`create index "email_outbox_pending_index" on "email_outbox" ("created_at") where "status" = 'pending';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "email_outbox_pending_index";`);
    this.addSql(`alter table "email_outbox" drop column "attempts", drop column "next_attempt_at";`);
  }
}
