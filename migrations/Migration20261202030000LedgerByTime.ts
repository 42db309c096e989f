import { Migration } from '@mikro-orm/migrations';

/**
 * The grouped transaction history (usage per day or hour, other entries as they are) reads an
 * organization's ledger by time window: an index on (org_id, created_at) keeps each page to its window.
 */
export class Migration20261202030000LedgerByTime extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "credit_ledger_org_id_created_at_index" on "credit_ledger" ("org_id", "created_at" desc);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "credit_ledger_org_id_created_at_index";`);
  }
}
