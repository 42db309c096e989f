/** server/db/rows.ts names a row's columns from the entities; its `ColumnNames` must list every `fieldName` that is not snake_case. */
import { describe, expect, it } from 'vitest';
import { entities } from '../../server/db/entities.js';

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe('row types (server/db/rows.ts)', () => {
  it('every property whose column is not its snake_case name is one that ColumnNames maps', () => {
    const renamed: string[] = [];
    for (const entity of entities) {
      for (const [name, prop] of Object.entries(entity.meta.properties)) {
        const column = (prop as { fieldName?: string }).fieldName;
        if (column !== undefined && column !== snakeCase(name)) renamed.push(`${entity.meta.className}.${name} -> ${column}`);
      }
    }
    // When this fails, add the property to `ColumnNames` in server/db/rows.ts and here.
    expect(renamed.sort()).toEqual(['OutboxEmail.text -> body', 'OutboxEmail.to -> recipient']);
  });
});
