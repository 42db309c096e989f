/** The roles matrix in shared/permissions.ts, pinned to the table in API.md. */
import { describe, expect, it } from 'vitest';
import { assignableRoles, can, canChangeMember, PERMISSIONS, ROLES, type Permission, type Role } from '../../shared/permissions.js';

/** API.md "Roles": who may do what (O = owner, A = admin, D = developer). */
const API_TABLE: Record<Permission, string> = {
  'org.view': 'OAD',
  'live.subscribe': 'OAD',
  'apiKey.create': 'OAD',
  'apiKey.revokeAny': 'OA',
  'project.manage': 'OA',
  'member.manage': 'OA',
  'member.manageOwners': 'O',
  'providerKey.manage': 'OA',
  'webhook.manage': 'OA',
  'billing.view': 'OA',
  'audit.view': 'OA',
  'billing.manage': 'O',
  'org.rename': 'OA',
  'org.retention': 'O',
  'org.delete': 'O',
};
const LETTER: Record<Role, string> = { owner: 'O', admin: 'A', developer: 'D' };

describe('the permission matrix', () => {
  it('has exactly the permissions of the API table', () => {
    expect(Object.keys(PERMISSIONS).sort()).toEqual(Object.keys(API_TABLE).sort());
  });

  for (const [permission, letters] of Object.entries(API_TABLE) as [Permission, string][]) {
    it(`${permission}: ${letters.split('').join(', ')}`, () => {
      for (const role of ROLES) expect(can(role, permission), `${role} ${permission}`).toBe(letters.includes(LETTER[role]));
    });
  }

  it('gives nobody anything without a role', () => {
    for (const permission of Object.keys(PERMISSIONS) as Permission[]) {
      expect(can(null, permission)).toBe(false);
      expect(can(undefined, permission)).toBe(false);
    }
  });

  it('lets owners do everything, and never gives a lower role more than a higher one', () => {
    for (const permission of Object.keys(PERMISSIONS) as Permission[]) {
      expect(can('owner', permission)).toBe(true);
      if (can('developer', permission)) expect(can('admin', permission)).toBe(true);
    }
  });
});

describe('changing members', () => {
  const cases: [Role, Role, Role | null, boolean][] = [
    // actor, from, to (null = remove), allowed
    ['owner', 'owner', 'admin', true],
    ['owner', 'developer', 'owner', true],
    ['owner', 'owner', null, true],
    ['admin', 'developer', 'admin', true],
    ['admin', 'admin', 'developer', true],
    ['admin', 'developer', null, true],
    ['admin', 'admin', null, true],
    ['admin', 'owner', 'admin', false],
    ['admin', 'owner', null, false],
    ['admin', 'developer', 'owner', false],
    ['admin', 'admin', 'owner', false],
    ['developer', 'developer', 'admin', false],
    ['developer', 'developer', null, false],
    ['developer', 'admin', 'developer', false],
  ];
  for (const [actor, from, to, allowed] of cases) {
    it(`${actor} ${to ? `changes ${from} to ${to}` : `removes ${from}`}: ${allowed ? 'yes' : 'no'}`, () => {
      expect(canChangeMember(actor, from, to)).toBe(allowed);
    });
  }

  it('lets owners hand out every role, admins admin and developer, developers none', () => {
    expect(assignableRoles('owner')).toEqual(['owner', 'admin', 'developer']);
    expect(assignableRoles('admin')).toEqual(['admin', 'developer']);
    expect(assignableRoles('developer')).toEqual([]);
  });
});
