import { ApiToken, Session, User } from '../modules/auth/entities.js';
import { Membership, Organization } from '../modules/organizations/entities.js';
import { Project } from '../modules/projects/entities.js';
import { Invitation } from '../modules/team/entities.js';
import { AuditEntry } from '../modules/audit/entities.js';
import { StoredEvent } from '../modules/live/entities.js';
import { OutboxEmail } from '../email/entities.js';
import { LedgerEntry } from '../modules/billing/entities.js';
import { ApiKey } from '../modules/apiKeys/entities.js';
import { ProviderKey } from '../modules/providerKeys/entities.js';

export const entities = [User, Session, ApiToken, Organization, Membership, Project, Invitation, AuditEntry, StoredEvent, OutboxEmail, LedgerEntry, ApiKey, ProviderKey];
