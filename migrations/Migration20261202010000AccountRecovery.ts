import { Migration } from '@mikro-orm/migrations';

/**
 * Account recovery and upkeep: emailed one-time links for a password reset, for verifying the
 * address at sign-up and for confirming a change of address (account_token: SHA-256 of the token,
 * the address it is for, expiry, used once); when each account's address was verified; the IP a
 * session was opened from (the sessions list shows it); and declined invitations.
 *
 * Accounts made before this migration start unverified: their pending invitations show once they
 * verify their address (from the account page), not before (docs/decisions.md "Accounts").
 */
export class Migration20261202010000AccountRecovery extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "app_user" add column "email_verified_at" timestamptz null;`);
    this.addSql(`alter table "session" add column "ip" varchar(100) null;`);
    this.addSql(`alter table "invitation" add column "declined_at" timestamptz null;`);
    this.addSql(`create table "account_token" (
      "id" uuid primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "purpose" text check ("purpose" in ('password_reset', 'email_verification', 'email_change')) not null,
      "email" varchar(255) not null,
      "token_hash" bytea not null constraint "account_token_token_hash_unique" unique,
      "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null);`);
    this.addSql(`create index "account_token_user_id_purpose_index" on "account_token" ("user_id", "purpose");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "account_token" cascade;`);
    this.addSql(`alter table "invitation" drop column if exists "declined_at";`);
    this.addSql(`alter table "session" drop column if exists "ip";`);
    this.addSql(`alter table "app_user" drop column if exists "email_verified_at";`);
  }
}
