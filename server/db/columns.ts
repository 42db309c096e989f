/**
 * Column helpers shared by the entities (the entities are the schema: docs/decisions.md).
 *
 * Entities carry plain id columns (`orgId: string`), never loaded relations; `references` maps such
 * a column as a many-to-one mapped to its primary key, which gives it its foreign key. Foreign keys
 * are DEFERRABLE INITIALLY DEFERRED (checked at commit, so insert order never matters) and never
 * cascade updates (primary keys never change). Chain `.deleteRule('cascade')` for rows that go with
 * their parent, `.nullable().deleteRule('set null')` for a reference that may outlive its target.
 */
import { DeferMode, p, type EntitySchema } from '@mikro-orm/postgresql';

export function references<Target extends EntitySchema<any, any>>(target: Target, column: string) {
  return p.manyToOne(target).mapToPk().fieldName(column).updateRule('no action').deferMode(DeferMode.INITIALLY_DEFERRED);
}
