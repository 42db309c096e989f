/**
 * The roles matrix (API.md). The server enforces it through orgProcedure(permission);
 * the client uses the same table to hide what a role cannot do.
 */
export const ROLES = ['owner', 'admin', 'developer'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = {
  'org.view': ['owner', 'admin', 'developer'],
  'live.subscribe': ['owner', 'admin', 'developer'],
  'apiKey.create': ['owner', 'admin', 'developer'],
  'apiKey.revokeAny': ['owner', 'admin'],
  'project.manage': ['owner', 'admin'],
  'member.manage': ['owner', 'admin'],
  'member.manageOwners': ['owner'],
  'providerKey.manage': ['owner', 'admin'],
  'webhook.manage': ['owner', 'admin'],
  'billing.view': ['owner', 'admin'],
  'audit.view': ['owner', 'admin'],
  'billing.manage': ['owner'],
  'org.rename': ['owner', 'admin'],
  'org.retention': ['owner'],
  'org.delete': ['owner'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(role: Role | null | undefined, permission: Permission): boolean {
  if (!role) return false;
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

/**
 * Whether `actor` may change a member from role `from` to role `to` (or remove them, with to = null).
 * Admins manage admins and developers; only owners touch the owner role.
 */
export function canChangeMember(actor: Role, from: Role, to: Role | null): boolean {
  if (!can(actor, 'member.manage')) return false;
  const touchesOwner = from === 'owner' || to === 'owner';
  return touchesOwner ? can(actor, 'member.manageOwners') : true;
}

/** Roles `actor` may hand out in an invitation or a role change. */
export function assignableRoles(actor: Role): Role[] {
  if (can(actor, 'member.manageOwners')) return ['owner', 'admin', 'developer'];
  if (can(actor, 'member.manage')) return ['admin', 'developer'];
  return [];
}

export const ROLE_LABELS: Record<Role, string> = { owner: 'Owner', admin: 'Admin', developer: 'Developer' };
