import { AccountAuditEntry, AccountToken, ApiToken, RateLimit, RecoveryCode, Session, SignInLink, User } from '../modules/auth/entities.js';
import { Membership, Organization } from '../modules/organizations/entities.js';
import { Project } from '../modules/projects/entities.js';
import { Invitation } from '../modules/team/entities.js';
import { AuditEntry } from '../modules/audit/entities.js';
import { Presence, StoredEvent } from '../modules/live/entities.js';
import { OutboxEmail } from '../email/entities.js';
import { AutoTopUpAttempt, BudgetAlert, DeletedOrganization, LedgerEntry, StripeEvent } from '../modules/billing/entities.js';
import { ApiKey } from '../modules/apiKeys/entities.js';
import { ProviderKey } from '../modules/providerKeys/entities.js';
import { RequestLog, UsageBatch, UsageRollup, UsageRollupProject } from '../modules/usage/entities.js';
import { ProviderHealthMinute, ResponseCacheEntry, StoredResponse } from '../modules/gateway/entities.js';
import { TestStripeObject } from '../dev/test-payments/entities.js';
import { WebhookDelivery, WebhookEndpoint } from '../modules/webhooks/entities.js';
import { LimitAlert } from '../modules/limits/alert-entities.js';
import { MemberBudget, SpendCounter, SpendLease } from '../modules/limits/entities.js';

/**
 * Every table's entity: the entities are the schema (`npm run db:check` fails when the migrated
 * database differs; `npm run migration:create` writes the migration for a change). See docs/decisions.md.
 */
export const entities = [
  User, Session, ApiToken, RecoveryCode, SignInLink, AccountAuditEntry, RateLimit, AccountToken,
  Organization, Membership, Project, Invitation, AuditEntry, StoredEvent, Presence, OutboxEmail,
  LedgerEntry, StripeEvent, AutoTopUpAttempt, BudgetAlert, DeletedOrganization, TestStripeObject,
  ApiKey, ProviderKey, RequestLog, UsageRollup, UsageRollupProject, ResponseCacheEntry,
  UsageBatch, StoredResponse, ProviderHealthMinute,
  WebhookEndpoint, WebhookDelivery,
  LimitAlert,
  MemberBudget, SpendCounter, SpendLease,
];
