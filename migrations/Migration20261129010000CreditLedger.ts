import { Migration } from '@mikro-orm/migrations';

/** The credit ledger: every change of an organization's credits, with its sources. */
export class Migration20261129010000CreditLedger extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "credit_ledger" (
      "id" bigserial primary key,
      "org_id" uuid not null references "organization" ("id") on delete cascade deferrable initially deferred,
      "type" text not null check ("type" in ('purchase', 'usage', 'usage_credit', 'refund', 'auto_topup', 'adjustment', 'plan_charge')),
      "amount_nanos" bigint not null,
      "balance_after_nanos" bigint not null,
      "status" text not null default 'completed' check ("status" in ('completed', 'pending', 'failed')),
      "description" varchar(500) not null,
      "actor_id" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "stripe_event_id" varchar(255) null,
      "payment_intent_id" varchar(255) null,
      "invoice_id" varchar(255) null,
      "refund_id" varchar(255) null,
      "request_count" int null,
      "related_entry_id" bigint null references "credit_ledger" ("id") on delete set null deferrable initially deferred,
      "created_at" timestamptz not null);`);
    this.addSql(`create index "credit_ledger_org_id_id_index" on "credit_ledger" ("org_id", "id" desc);`);
    // A payment intent credits an organization at most once (purchases, auto top-ups).
    this.addSql(`create unique index "credit_ledger_payment_intent_unique" on "credit_ledger" ("payment_intent_id") where "payment_intent_id" is not null and "type" in ('purchase', 'auto_topup');`);
    this.addSql(`create unique index "credit_ledger_refund_unique" on "credit_ledger" ("refund_id") where "refund_id" is not null;`);
    this.addSql(`create unique index "credit_ledger_credit_back_unique" on "credit_ledger" ("related_entry_id") where "type" = 'usage_credit';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "credit_ledger" cascade;`);
  }
}
