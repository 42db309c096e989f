/** The organizations the signed-in user belongs to (the switcher's list). */
import { createSignal } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { api, type RouterOutputs } from '../api.js';
import { LAST_ORG_KEY } from './session.js';

export type OrgSummary = RouterOutputs['organization']['list'][number];

const [orgs, setOrgs] = createStore<{ list: OrgSummary[] }>({ list: [] });
const [orgsLoaded, setOrgsLoaded] = createSignal(false);
const [orgsError, setOrgsError] = createSignal<unknown>(null);
export { orgs, orgsLoaded, orgsError };

let inflight: Promise<OrgSummary[]> | null = null;

export function refreshOrgs(): Promise<OrgSummary[]> {
  inflight ??= api.organization.list
    .query()
    .then((list) => {
      setOrgs('list', reconcile(list, { key: 'id' }));
      setOrgsLoaded(true);
      setOrgsError(null);
      return list;
    })
    .catch((err) => {
      setOrgsError(err);
      throw err;
    })
    .finally(() => {
      inflight = null;
    });
  return inflight;
}

/** Patches one organization in the switcher without a round trip (live events). */
export function patchOrgSummary(orgId: string, patch: Partial<OrgSummary>) {
  setOrgs('list', (o) => o.id === orgId, patch);
}

export function rememberOrg(orgId: string) {
  localStorage.setItem(LAST_ORG_KEY, orgId);
}

/** Where to go when no organization is in the URL: the last one used, the first, or creation. */
export function defaultOrgPath(list: OrgSummary[], except?: string): string {
  const candidates = list.filter((o) => o.id !== except);
  const last = localStorage.getItem(LAST_ORG_KEY);
  const pick = candidates.find((o) => o.id === last) ?? candidates[0];
  return pick ? `/org/${pick.id}/overview` : '/orgs/new';
}
