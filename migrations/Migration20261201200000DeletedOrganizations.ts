import { Migration } from '@mikro-orm/migrations';

/**
 * Deleting an organization keeps its financial records: the ledger, auto top-up attempts and the
 * audit trail no longer cascade with the organization row (their org_id stays, as a plain id), and
 * each deleted organization is archived in `deleted_organization` (what it had and what became of
 * its subscription and credits), for the operator and for accounting.
 */
export class Migration20261201200000DeletedOrganizations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "deleted_organization" (
      "id" uuid primary key,
      "name" varchar(255) not null,
      "plan" text not null check ("plan" in ('free', 'pro', 'enterprise')),
      "billing_email" varchar(255) null,
      "stripe_customer_id" varchar(255) null,
      "subscription_id" varchar(255) null,
      "subscription_cancellation" varchar(500) not null,
      "forfeited_credits_nanos" bigint not null,
      "created_at" timestamptz not null,
      "deleted_by" uuid null references "app_user" ("id") on delete set null deferrable initially deferred,
      "deleted_at" timestamptz not null);`);
    this.addSql(`create index "deleted_organization_deleted_at_index" on "deleted_organization" ("deleted_at" desc);`);
    // Whatever the foreign keys are named (inline `references` named them <table>_org_id_fkey).
    this.addSql(`do $$
      declare c record;
      begin
        for c in
          select con.conrelid::regclass::text as tbl, con.conname
            from pg_constraint con
            join pg_attribute a on a.attrelid = con.conrelid and a.attnum = any (con.conkey)
           where con.contype = 'f' and con.confrelid = 'organization'::regclass and a.attname = 'org_id'
             and con.conrelid in ('credit_ledger'::regclass, 'auto_top_up_attempt'::regclass, 'audit_log'::regclass)
        loop
          execute format('alter table %I drop constraint %I', c.tbl, c.conname);
        end loop;
      end $$;`);
  }

  override async down(): Promise<void> {
    // Records of deleted organizations cannot point at a row that no longer exists.
    this.addSql(`delete from "credit_ledger" where "org_id" not in (select "id" from "organization");`);
    this.addSql(`delete from "auto_top_up_attempt" where "org_id" not in (select "id" from "organization");`);
    this.addSql(`delete from "audit_log" where "org_id" not in (select "id" from "organization");`);
    this.addSql(`alter table "credit_ledger" add constraint "credit_ledger_org_id_fkey" foreign key ("org_id") references "organization" ("id") on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "auto_top_up_attempt" add constraint "auto_top_up_attempt_org_id_fkey" foreign key ("org_id") references "organization" ("id") on delete cascade deferrable initially deferred;`);
    this.addSql(`alter table "audit_log" add constraint "audit_log_org_id_fkey" foreign key ("org_id") references "organization" ("id") on delete cascade deferrable initially deferred;`);
    this.addSql(`drop table "deleted_organization";`);
  }
}
