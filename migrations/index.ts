import { Migration20261129000000Foundation } from './Migration20261129000000Foundation.js';
import { Migration20261129010000Billing } from './Migration20261129010000Billing.js';
import { Migration20261129020000Gateway } from './Migration20261129020000Gateway.js';
import { Migration20261129030000TotpReplay } from './Migration20261129030000TotpReplay.js';
import { Migration20261129040000EmailRetry } from './Migration20261129040000EmailRetry.js';
import { Migration20261129050000CacheWrites } from './Migration20261129050000CacheWrites.js';

/** Every migration, in order. Listed explicitly so they run the same under tsx, vitest and a bundler. */
export const migrationsList = [
  { name: 'Migration20261129000000Foundation', class: Migration20261129000000Foundation },
  { name: 'Migration20261129010000Billing', class: Migration20261129010000Billing },
  { name: 'Migration20261129020000Gateway', class: Migration20261129020000Gateway },
  { name: 'Migration20261129030000TotpReplay', class: Migration20261129030000TotpReplay },
  { name: 'Migration20261129040000EmailRetry', class: Migration20261129040000EmailRetry },
  { name: 'Migration20261129050000CacheWrites', class: Migration20261129050000CacheWrites },
];
