/**
 * Everything under /org/:orgId: loads the organization, keeps one live subscription for it,
 * reports presence, and reacts to events that concern the current user (role changed, removed,
 * organization deleted) before the pages see them.
 */
import { useLocation, useNavigate, useParams, type RouteSectionProps } from '@solidjs/router';
import { createEffect, Match, on, onCleanup, Switch } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { A } from '@solidjs/router';
import type { LiveEvent, Viewer } from '../../../shared/events.js';
import { can, ROLE_LABELS } from '../../../shared/permissions.js';
import { api, errorCode } from '../api.js';
import { createBillingStore } from '../state/billing.js';
import { subscribeToOrganization, type LiveStatus } from '../state/live.js';
import { listenersHub, OrgContext, type OrgContextValue, type Organization } from '../state/org-context.js';
import { defaultOrgPath, orgs, patchOrgSummary, refreshOrgs, rememberOrg } from '../state/orgs.js';
import { loadMe, me } from '../state/session.js';
import { ErrorState, Loading } from '../ui/components.js';
import { showNotice } from '../ui/notice.js';
import { toast } from '../ui/toast.js';
import { BillingBanners } from './BillingBanners.js';
import { LimitBanners } from './LimitBanners.js';
import { Shell } from './Shell.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PRESENCE_HEARTBEAT_MS = 25_000;

export function OrgLayout(props: RouteSectionProps) {
  const params = useParams<{ orgId: string }>();
  const location = useLocation();
  const navigate = useNavigate();
  const hub = listenersHub();
  const [state, setState] = createStore({
    org: null as Organization | null,
    error: null as unknown,
    viewers: [] as Viewer[],
    live: 'connecting' as LiveStatus,
  });
  let departing = false;

  const page = () => location.pathname.split('/')[3] || 'overview';
  const orgName = () => state.org?.name ?? orgs.list.find((o) => o.id === params.orgId)?.name ?? 'this organization';

  async function loadOrg(orgId: string) {
    try {
      const org = await api.organization.get.query({ orgId });
      if (orgId !== params.orgId) return;
      setState('org', reconcile(org));
      setState('error', null);
      patchOrgSummary(orgId, { name: org.name, role: org.myRole, plan: org.plan, credits: org.credits });
    } catch (err) {
      if (orgId === params.orgId && !state.org) setState('error', err);
      else if (errorCode(err) === 'NOT_FOUND') void departTo(`You no longer have access to ${orgName()}.`);
    }
  }

  async function departTo(message: string | null) {
    if (departing) return;
    departing = true;
    const leaving = params.orgId;
    if (message) showNotice(message);
    const list = await refreshOrgs().catch(() => orgs.list.filter((o) => o.id !== leaving));
    navigate(defaultOrgPath(list, leaving), { replace: true });
  }

  function patchOrg(patch: Partial<Organization>) {
    setState('org', (o) => (o ? { ...o, ...patch } : o));
  }

  function handleEvent(orgId: string, event: LiveEvent) {
    const myId = me()?.id;
    switch (event.type) {
      case 'organization.updated':
        patchOrg({ name: event.name, billingEmail: event.billingEmail, retentionLevel: event.retentionLevel, version: event.version, plan: event.plan as Organization['plan'] });
        patchOrgSummary(orgId, { name: event.name, plan: event.plan as Organization['plan'] });
        break;
      case 'credits.changed':
        patchOrg({ credits: event.credits });
        patchOrgSummary(orgId, { credits: event.credits });
        break;
      case 'presence':
        setState('viewers', reconcile(event.viewers, { key: 'userId' }));
        break;
      case 'member.updated':
        if (event.userId === myId) {
          patchOrg({ myRole: event.role });
          patchOrgSummary(orgId, { role: event.role });
          toast.info(`Your role in ${orgName()} is now ${ROLE_LABELS[event.role]}.`);
          void loadOrg(orgId);
        }
        break;
      case 'member.removed':
        if (event.userId === myId) {
          void departTo(event.reason === 'left' ? `You left ${orgName()}.` : `You were removed from ${orgName()}.`);
        }
        break;
      case 'organization.deleted':
        void departTo(`${orgName()} was deleted${event.actorId && event.actorId !== myId ? ' by one of its owners' : ''}.`);
        break;
    }
    hub.emit(event);
  }

  function sendPresence() {
    const orgId = params.orgId;
    if (!state.org || !UUID.test(orgId)) return;
    api.presence.update.mutate({ orgId, page: page() }).catch(() => {});
  }

  createEffect(
    on(
      () => params.orgId,
      (orgId) => {
        departing = false;
        setState({ org: null, error: null, viewers: [], live: 'connecting' });
        if (!UUID.test(orgId)) {
          setState('error', new Error('This address does not point to an organization.'));
          return;
        }
        rememberOrg(orgId);
        void loadOrg(orgId);
        const stop = subscribeToOrganization(orgId, {
          onEvent: (event) => handleEvent(orgId, event),
          onStatus: (status) => {
            const wasLive = state.live === 'live';
            setState('live', status);
            // A new socket is a new presence entry on the server: announce ourselves again.
            if (status === 'live' && !wasLive) sendPresence();
          },
          onRefused: (code) => {
            if (code === 'UNAUTHORIZED') void loadMe().catch(() => {});
            else if (state.org) void departTo(`You no longer have access to ${orgName()}.`);
          },
        });
        onCleanup(stop);
      },
    ),
  );

  // Presence: on every page change, once the organization is known, and as a heartbeat.
  createEffect(on([() => params.orgId, page, () => !!state.org], () => sendPresence()));
  const heartbeat = setInterval(sendPresence, PRESENCE_HEARTBEAT_MS);
  onCleanup(() => clearInterval(heartbeat));

  const billing = createBillingStore({
    orgId: () => params.orgId,
    enabled: () => !!state.org && can(state.org.myRole, 'billing.view'),
    onEvent: (handler) => hub.add(handler),
  });

  const ctx: OrgContextValue = {
    orgId: () => params.orgId,
    org: () => state.org,
    role: () => state.org?.myRole ?? null,
    can: (permission) => can(state.org?.myRole, permission),
    viewers: () => state.viewers,
    liveStatus: () => state.live,
    reloadOrg: () => loadOrg(params.orgId),
    setOrg: (org) => setState('org', reconcile(org)),
    onEvent: (handler) => hub.add(handler),
    depart: (message) => departTo(message),
    billing,
  };

  return (
    <OrgContext.Provider value={ctx}>
      <Shell nav={!state.error}>
        <Switch>
          <Match when={state.error}>
            <div class="page">
              <Switch fallback={<ErrorState error={state.error} retry={() => void loadOrg(params.orgId)} />}>
                <Match when={errorCode(state.error) === 'NOT_FOUND' || !UUID.test(params.orgId)}>
                  <div class="error-state" role="alert">
                    <p>This organization does not exist, or you are not a member of it.</p>
                    <A class="btn btn-secondary btn-sm" href="/">
                      Go to my organizations
                    </A>
                  </div>
                </Match>
              </Switch>
            </div>
          </Match>
          <Match when={!state.org}>
            <Loading label="Loading organization…" />
          </Match>
          <Match when={state.org}>
            <BillingBanners />
            <LimitBanners />
            {props.children}
          </Match>
        </Switch>
      </Shell>
    </OrgContext.Provider>
  );
}
