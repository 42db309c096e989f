import { Migration } from '@mikro-orm/migrations';

/** Two-factor codes are single-use: the last 30-second step a code was accepted for, per user. */
export class Migration20261129030000TotpReplay extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_user" add column "totp_last_step" bigint null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "app_user" drop column "totp_last_step";`);
  }
}
