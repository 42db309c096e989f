import { Migration } from '@mikro-orm/migrations';

/**
 * API key settings (issue #12, first slice): an expiry, an on/off switch, allow lists of models and
 * providers (patterns such as `anthropic/*`), a flag saying an owner or admin set the key's
 * restrictions (its developer may then only tighten them), and rolling: the previous secret's hash
 * stays valid until `previous_key_expires_at` (a grace period of at most 24 hours).
 */
export class Migration20261202080000ApiKeySettings extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "api_key"
      add column "expires_at" timestamptz null,
      add column "enabled" boolean not null default true,
      add column "allowed_models" jsonb null,
      add column "allowed_providers" jsonb null,
      add column "restricted_by_admin" boolean not null default false,
      add column "previous_key_hash" bytea null,
      add column "previous_key_expires_at" timestamptz null,
      add column "rolled_at" timestamptz null;`);
    this.addSql(`alter table "api_key" add constraint "api_key_previous_key_hash_unique" unique ("previous_key_hash");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_key" drop constraint "api_key_previous_key_hash_unique";`);
    this.addSql(`alter table "api_key" drop column "expires_at", drop column "enabled", drop column "allowed_models", drop column "allowed_providers",
      drop column "restricted_by_admin", drop column "previous_key_hash", drop column "previous_key_expires_at", drop column "rolled_at";`);
  }
}
