import { Migration20261129000000Foundation } from './Migration20261129000000Foundation.js';

/** Every migration, in order. Listed explicitly so they run the same under tsx, vitest and a bundler. */
export const migrationsList = [{ name: 'Migration20261129000000Foundation', class: Migration20261129000000Foundation }];
