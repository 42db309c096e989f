import { Migration20261129000000Foundation } from './Migration20261129000000Foundation.js';
import { Migration20261129010000Billing } from './Migration20261129010000Billing.js';
import { Migration20261129020000Gateway } from './Migration20261129020000Gateway.js';
import { Migration20261129030000TotpReplay } from './Migration20261129030000TotpReplay.js';
import { Migration20261129040000EmailRetry } from './Migration20261129040000EmailRetry.js';
import { Migration20261129050000CacheWrites } from './Migration20261129050000CacheWrites.js';
import { Migration20261201010000PartitionRequestLog } from './Migration20261201010000PartitionRequestLog.js';
import { Migration20261201100000UsageBatch } from './Migration20261201100000UsageBatch.js';
import { Migration20261201200000DeletedOrganizations } from './Migration20261201200000DeletedOrganizations.js';
import { Migration20261202080000ApiKeySettings } from './Migration20261202080000ApiKeySettings.js';
import { Migration20261202060000StoredResponses } from './Migration20261202060000StoredResponses.js';
import { Migration20261202070000ProjectAllowedOrigins } from './Migration20261202070000ProjectAllowedOrigins.js';
import { Migration20261203040000SpendLimits } from './Migration20261203040000SpendLimits.js';
import { Migration20261203050000LimitAlerts } from './Migration20261203050000LimitAlerts.js';
import { Migration20261202090000RequestEndpoint } from './Migration20261202090000RequestEndpoint.js';
import { Migration20261201300000AccountSecurity } from './Migration20261201300000AccountSecurity.js';
import { Migration20261202010000AccountRecovery } from './Migration20261202010000AccountRecovery.js';
import { Migration20261202030000LedgerByTime } from './Migration20261202030000LedgerByTime.js';
import { Migration20261202020000Webhooks } from './Migration20261202020000Webhooks.js';
import { Migration20261203020000ProviderHealth } from './Migration20261203020000ProviderHealth.js';
import { Migration20261203020100ProjectRouting } from './Migration20261203020100ProjectRouting.js';
import { Migration20261203030000RoutingRecords } from './Migration20261203030000RoutingRecords.js';

/** Every migration, in order. Listed explicitly so they run the same under tsx, vitest and a bundler. */
export const migrationsList = [
  { name: 'Migration20261129000000Foundation', class: Migration20261129000000Foundation },
  { name: 'Migration20261129010000Billing', class: Migration20261129010000Billing },
  { name: 'Migration20261129020000Gateway', class: Migration20261129020000Gateway },
  { name: 'Migration20261129030000TotpReplay', class: Migration20261129030000TotpReplay },
  { name: 'Migration20261129040000EmailRetry', class: Migration20261129040000EmailRetry },
  { name: 'Migration20261129050000CacheWrites', class: Migration20261129050000CacheWrites },
  { name: 'Migration20261201010000PartitionRequestLog', class: Migration20261201010000PartitionRequestLog },
  { name: 'Migration20261201100000UsageBatch', class: Migration20261201100000UsageBatch },
  { name: 'Migration20261201200000DeletedOrganizations', class: Migration20261201200000DeletedOrganizations },
  { name: 'Migration20261201300000AccountSecurity', class: Migration20261201300000AccountSecurity },
  { name: 'Migration20261202010000AccountRecovery', class: Migration20261202010000AccountRecovery },
  { name: 'Migration20261202030000LedgerByTime', class: Migration20261202030000LedgerByTime },
  { name: 'Migration20261202020000Webhooks', class: Migration20261202020000Webhooks },
  { name: 'Migration20261202080000ApiKeySettings', class: Migration20261202080000ApiKeySettings },
  { name: 'Migration20261202060000StoredResponses', class: Migration20261202060000StoredResponses },
  { name: 'Migration20261202090000RequestEndpoint', class: Migration20261202090000RequestEndpoint },
  { name: 'Migration20261202070000ProjectAllowedOrigins', class: Migration20261202070000ProjectAllowedOrigins },
  { name: 'Migration20261203040000SpendLimits', class: Migration20261203040000SpendLimits },
  { name: 'Migration20261203050000LimitAlerts', class: Migration20261203050000LimitAlerts },
  { name: 'Migration20261203020000ProviderHealth', class: Migration20261203020000ProviderHealth },
  { name: 'Migration20261203020100ProjectRouting', class: Migration20261203020100ProjectRouting },
  { name: 'Migration20261203030000RoutingRecords', class: Migration20261203030000RoutingRecords },
];
