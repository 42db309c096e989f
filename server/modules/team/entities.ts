import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { references } from '../../db/columns.js';
import { User } from '../auth/entities.js';
import { Organization } from '../organizations/entities.js';
import { ROLES } from '../../../shared/permissions.js';

export const Invitation = defineEntity({
  name: 'Invitation',
  tableName: 'invitation',
  properties: {
    id: p.uuid().primary(),
    orgId: references(Organization, 'org_id').deleteRule('cascade').index(),
    email: p.string(),
    role: p.enum([...ROLES]),
    /** SHA-256 of the token in the link; the token itself is never stored. */
    tokenHash: p.string().unique(),
    invitedBy: references(User, 'invited_by').deleteRule('cascade'),
    expiresAt: p.datetime(),
    acceptedAt: p.datetime().nullable(),
    acceptedBy: references(User, 'accepted_by').nullable().deleteRule('set null'),
    revokedAt: p.datetime().nullable(),
    /** Declined by the invited account from its home page (auth.pendingInvitations). */
    declinedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});
export type InvitationEntity = InferEntity<typeof Invitation>;
