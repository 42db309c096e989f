/** What every page inside /org/:orgId gets: the organization, my role, live events and viewers. */
import { createContext, onCleanup, useContext } from 'solid-js';
import type { LiveEvent, Viewer } from '../../../shared/events.js';
import { can, type Permission, type Role } from '../../../shared/permissions.js';
import type { RouterOutputs } from '../api.js';
import type { BillingStore } from './billing.js';
import type { LiveStatus } from './live.js';

export type Organization = RouterOutputs['organization']['get'];

export interface OrgContextValue {
  orgId(): string;
  org(): Organization | null;
  role(): Role | null;
  can(permission: Permission): boolean;
  viewers(): Viewer[];
  liveStatus(): LiveStatus;
  reloadOrg(): Promise<void>;
  /** Replace the organization after a mutation returned it. */
  setOrg(org: Organization): void;
  /** Listen to this organization's live events while the calling component lives. */
  onEvent(handler: (event: LiveEvent) => void): void;
  /** Leave this organization's pages (left, removed, deleted) with a notice; idempotent. */
  depart(message: string | null): Promise<void>;
  /** The billing overview, for roles that may view billing (null otherwise, or while loading). */
  billing: BillingStore;
}

export const OrgContext = createContext<OrgContextValue>();

export function useOrg(): OrgContextValue {
  const ctx = useContext(OrgContext);
  if (!ctx) throw new Error('useOrg outside an organization route');
  return ctx;
}

export function listenersHub() {
  const listeners = new Set<(event: LiveEvent) => void>();
  return {
    emit(event: LiveEvent) {
      for (const l of [...listeners]) l(event);
    },
    add(handler: (event: LiveEvent) => void) {
      listeners.add(handler);
      onCleanup(() => listeners.delete(handler));
    },
  };
}

export function roleCan(role: Role | null, permission: Permission) {
  return can(role, permission);
}
