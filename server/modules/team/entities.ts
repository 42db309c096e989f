import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';
import { ROLES } from '../../../shared/permissions.js';

export const Invitation = defineEntity({
  name: 'Invitation',
  tableName: 'invitation',
  properties: {
    id: p.uuid().primary(),
    orgId: p.uuid().index(),
    email: p.string(),
    role: p.enum([...ROLES]),
    /** SHA-256 of the token in the link; the token itself is never stored. */
    tokenHash: p.string().unique(),
    invitedBy: p.uuid(),
    expiresAt: p.datetime(),
    acceptedAt: p.datetime().nullable(),
    acceptedBy: p.uuid().nullable(),
    revokedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});
export type InvitationEntity = InferEntity<typeof Invitation>;
