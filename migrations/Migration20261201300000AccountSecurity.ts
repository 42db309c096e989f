import { Migration } from '@mikro-orm/migrations';

/**
 * Account security: one-time recovery codes for two-factor authentication, emailed one-time
 * sign-in links (asked for when an account is under a password-guessing attack), and a
 * user-scoped audit log for account events (sign-up, two-factor changes), which belong to no
 * organization.
 */
export class Migration20261201300000AccountSecurity extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "recovery_code" (
      "id" uuid primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "code_hash" bytea not null, "used_at" timestamptz null, "created_at" timestamptz not null,
      constraint "recovery_code_user_id_code_hash_unique" unique ("user_id", "code_hash"));`);

    this.addSql(`create table "sign_in_link" (
      "id" uuid primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "token_hash" bytea not null constraint "sign_in_link_token_hash_unique" unique,
      "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null);`);
    this.addSql(`create index "sign_in_link_user_id_index" on "sign_in_link" ("user_id");`);

    this.addSql(`create table "account_audit_log" (
      "id" bigserial primary key, "user_id" uuid not null references "app_user" ("id") on delete cascade deferrable initially deferred,
      "actor_id" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "action" varchar(255) not null, "ip" varchar(100) null, "details" jsonb null, "created_at" timestamptz not null);`);
    this.addSql(`create index "account_audit_log_user_id_id_index" on "account_audit_log" ("user_id", "id");`);
  }

  override async down(): Promise<void> {
    for (const t of ['account_audit_log', 'sign_in_link', 'recovery_code']) this.addSql(`drop table if exists "${t}" cascade;`);
  }
}
