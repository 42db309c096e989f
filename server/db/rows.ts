/**
 * Row types for raw SQL, derived from the entities (one place, not one hand-written type per
 * query). `Row<typeof LedgerEntry>` is a `select *` row of credit_ledger as node-postgres returns it:
 * snake_case column names (the naming strategy's), bigint columns as strings, timestamps as Date,
 * bytea as Buffer, jsonb parsed, a nullable column as `T | null`. `RowOf<typeof E, 'col' | ...>` picks
 * columns. A property mapped with an explicit `fieldName` different from its snake_case name
 * (OutboxEmail's `to`/`text`) keeps the property's snake_case name here.
 */
import type { EntitySchema, InferEntity } from '@mikro-orm/postgresql';

/** `orgId` -> `org_id`, `latB12` -> `lat_b12`, `last4` -> `last4`. */
export type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
  : S;

/** What node-postgres gives for a value the entity types as `T`. */
export type RawValue<T> = T extends bigint ? string : T extends undefined ? null : Unbranded<T>;

/** Drops MikroORM's `Opt` / `Hidden` markers (a column with a default is still a plain value in a row). */
type Unbranded<T> = T extends number ? number : T extends boolean ? boolean : T extends `${infer S}` ? S : T;

type AnyEntity = EntitySchema<any, any>;

export type Row<E extends AnyEntity> = {
  [P in keyof InferEntity<E> & string as SnakeCase<P>]-?: RawValue<InferEntity<E>[P]>;
};

export type RowOf<E extends AnyEntity, Columns extends keyof Row<E>> = Pick<Row<E>, Columns>;
