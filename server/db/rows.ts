/**
 * Row types for raw SQL, derived from the entities (one place, not one hand-written type per
 * query). `Row<typeof LedgerEntry>` is a `select *` row of credit_ledger as node-postgres returns it:
 * column names (the naming strategy's snake_case, or a property's explicit `fieldName`: see
 * `ColumnNames`), bigint columns as strings, timestamps as Date, bytea as Buffer, jsonb parsed, a
 * nullable column as `T | null`, a column with a default as its plain type. `RowOf<typeof E, 'col' | ...>`
 * picks columns. A row of a join or an aggregate combines these with its computed fields:
 * `RowOf<typeof Membership, 'role'> & RowOf<typeof User, 'email'> & { n: string }`.
 */
import type { EntitySchema, Hidden, InferEntity, Opt } from '@mikro-orm/postgresql';
import type { OutboxEmailEntity } from '../email/entities.js';

/** `orgId` -> `org_id`, `latB12` -> `lat_b12`, `last4` -> `last4`. */
export type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
  : S;

/** What node-postgres gives for a value the entity types as `T`. */
export type RawValue<T> = Unbranded<T> extends infer V ? (V extends bigint ? string : V extends undefined ? null : V) : never;

/** Drops MikroORM's `Opt` / `Hidden` markers (a column with a default is a plain value in a row). */
type Unbranded<T> = Unhidden<T extends Opt<infer V> ? V : T>;
type Unhidden<T> = T extends Hidden<infer V> ? V : T;

/**
 * Properties mapped to a column whose name is not their snake_case name (`fieldName`, which the
 * property builders' types do not carry). tests/unit/rows.test.ts checks this list against the
 * entities' metadata, so a new `fieldName` cannot be missed.
 */
type ColumnNames<Entity> = Entity extends OutboxEmailEntity ? { to: 'recipient'; text: 'body' } : Record<never, never>;

type ColumnName<Entity, P extends string> = P extends keyof ColumnNames<Entity> ? ColumnNames<Entity>[P] & string : SnakeCase<P>;

type AnyEntity = EntitySchema<any, any>;

export type Row<E extends AnyEntity> = {
  [P in keyof InferEntity<E> & string as ColumnName<InferEntity<E>, P>]-?: RawValue<InferEntity<E>[P]>;
};

export type RowOf<E extends AnyEntity, Columns extends keyof Row<E>> = Pick<Row<E>, Columns>;
