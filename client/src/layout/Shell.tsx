/** The signed-in frame: top bar (organization switcher, presence, account menu) and the side nav. */
import { A, useLocation } from '@solidjs/router';
import { createEffect, createSignal, For, on, onCleanup, onMount, Show, useContext, type ParentProps } from 'solid-js';
import { ROLE_LABELS } from '../../../shared/permissions.js';
import { OrgContext } from '../state/org-context.js';
import { orgs, orgsLoaded, refreshOrgs } from '../state/orgs.js';
import { me, signOut } from '../state/session.js';
import { Avatar } from '../ui/components.js';

/** Closes a disclosure on Escape or a click outside it. */
function useDismiss(root: () => HTMLElement | undefined, open: () => boolean, close: () => void) {
  const onDocClick = (e: MouseEvent) => {
    const el = root();
    if (open() && el && !el.contains(e.target as Node)) close();
  };
  const onKey = (e: KeyboardEvent) => {
    if (open() && e.key === 'Escape') {
      close();
      root()?.querySelector<HTMLButtonElement>('button')?.focus();
    }
  };
  document.addEventListener('click', onDocClick);
  document.addEventListener('keydown', onKey);
  onCleanup(() => {
    document.removeEventListener('click', onDocClick);
    document.removeEventListener('keydown', onKey);
  });
}

function OrgSwitcher() {
  const ctx = useContext(OrgContext);
  const location = useLocation();
  const [open, setOpen] = createSignal(false);
  let root: HTMLDivElement | undefined;
  useDismiss(() => root, open, () => setOpen(false));
  createEffect(on(() => location.pathname, () => setOpen(false), { defer: true }));
  const current = () => (ctx ? orgs.list.find((o) => o.id === ctx.orgId()) : undefined);
  // Outside an organization (home, account) the switcher is a way in, not a missing choice.
  const label = () => ctx?.org()?.name ?? current()?.name ?? (orgs.list.length > 0 ? 'Organizations' : orgsLoaded() ? 'No organization yet' : 'Organizations');
  return (
    <div class="switcher" ref={root}>
      <button
        type="button"
        class="switcher-button"
        aria-expanded={open()}
        aria-controls="org-switcher-list"
        aria-label={`Organization: ${label()}. Switch organization`}
        onClick={() => {
          // Memberships can change elsewhere (an invitation accepted in another tab): refresh on open.
          if (!open()) void refreshOrgs().catch(() => {});
          setOpen(!open());
        }}
      >
        <span class="switcher-name">{label()}</span>
        <span class="chevron" aria-hidden="true">
          ▾
        </span>
      </button>
      <Show when={open()}>
        <div class="popover" id="org-switcher-list">
          <p class="popover-heading">Your organizations</p>
          <ul class="popover-list">
            <For each={orgs.list} fallback={<li class="popover-empty">{orgsLoaded() ? 'None yet' : 'Loading…'}</li>}>
              {(o) => (
                <li>
                  <A
                    href={`/org/${o.id}/overview`}
                    class="popover-item"
                    aria-current={ctx?.orgId() === o.id ? 'true' : undefined}
                    classList={{ current: ctx?.orgId() === o.id }}
                  >
                    <span class="popover-item-name">{o.name}</span>
                    <span class="popover-item-meta">{ROLE_LABELS[o.role]}</span>
                  </A>
                </li>
              )}
            </For>
          </ul>
          <div class="popover-footer">
            <A href="/orgs/new" class="popover-item">
              <span aria-hidden="true" class="plus">+</span> New organization
            </A>
          </div>
        </div>
      </Show>
    </div>
  );
}

function PresenceStack() {
  const ctx = useContext(OrgContext)!;
  const others = () => ctx.viewers().filter((v) => v.userId !== me()?.id);
  const shown = () => others().slice(0, 4);
  const description = () =>
    others().length === 0 ? 'Only you are viewing this organization' : `Also viewing: ${others().map((v) => `${v.name} (${v.page})`).join(', ')}`;
  return (
    <div class="presence" data-testid="presence" aria-label={description()} role="group">
      <For each={shown()}>{(v) => <Avatar name={v.name} id={v.userId} size="sm" title={`${v.name} · viewing ${v.page}`} />}</For>
      <Show when={others().length > shown().length}>
        <span class="avatar avatar-sm avatar-more" aria-hidden="true">
          +{others().length - shown().length}
        </span>
      </Show>
      <span class="sr-only">{description()}</span>
    </div>
  );
}

function LiveIndicator() {
  const ctx = useContext(OrgContext)!;
  const text = () =>
    ({ live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', ended: 'Offline' })[ctx.liveStatus()];
  return (
    <span class={`live-dot live-${ctx.liveStatus()}`} title={`Live updates: ${text()}`}>
      <span class="dot" aria-hidden="true" />
      <span class="live-text">{text()}</span>
    </span>
  );
}

function UserMenu() {
  const [open, setOpen] = createSignal(false);
  const location = useLocation();
  let root: HTMLDivElement | undefined;
  useDismiss(() => root, open, () => setOpen(false));
  createEffect(on(() => location.pathname, () => setOpen(false), { defer: true }));
  return (
    <div class="switcher user-menu" ref={root}>
      <button type="button" class="user-button" aria-expanded={open()} aria-controls="user-menu-list" onClick={() => setOpen(!open())}>
        <Avatar name={me()?.name ?? '?'} id={me()?.id ?? ''} size="sm" />
        <span class="user-name">{me()?.name}</span>
        <span class="sr-only">Account menu</span>
      </button>
      <Show when={open()}>
        <div class="popover popover-right" id="user-menu-list">
          <p class="popover-heading">{me()?.email}</p>
          <A href="/account" class="popover-item">
            Account and security
          </A>
          <button type="button" class="popover-item" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </Show>
    </div>
  );
}

function SideNav(props: { open: boolean }) {
  const ctx = useContext(OrgContext)!;
  const base = () => `/org/${ctx.orgId()}`;
  const links = () => [
    { href: `${base()}/overview`, label: 'Overview', show: true },
    { href: `${base()}/analytics`, label: 'Analytics', show: true },
    { href: `${base()}/logs`, label: 'Request log', show: true },
    { href: `${base()}/providers`, label: 'Providers', show: true },
    { href: `${base()}/keys`, label: 'API keys', show: true },
    { href: `${base()}/provider-keys`, label: 'Provider keys', show: ctx.can('providerKey.manage') },
    { href: `${base()}/webhooks`, label: 'Webhooks', show: ctx.can('webhook.manage') },
    { href: `${base()}/projects`, label: 'Projects', show: true },
    { href: `${base()}/team`, label: 'Team', show: true },
    { href: `${base()}/billing`, label: 'Billing', show: ctx.can('billing.view') },
    { href: `${base()}/settings`, label: 'Settings', show: true },
    { href: `${base()}/audit`, label: 'Audit log', show: ctx.can('audit.view') },
  ];
  return (
    <nav id="side-nav" class="sidenav" classList={{ open: props.open }} aria-label="Organization">
      <p class="sidenav-heading">{ctx.org()?.name}</p>
      <ul>
        <For each={links().filter((l) => l.show)}>
          {(l) => (
            <li>
              <A href={l.href} class="sidenav-link" activeClass="active">
                {l.label}
              </A>
            </li>
          )}
        </For>
      </ul>
    </nav>
  );
}

/** `nav={false}`: no organization navigation (the organization could not be opened). */
export function Shell(props: ParentProps<{ nav?: boolean }>) {
  const orgCtx = useContext(OrgContext);
  const withNav = () => !!orgCtx && props.nav !== false;
  const location = useLocation();
  const [navOpen, setNavOpen] = createSignal(false);
  createEffect(on(() => location.pathname, () => setNavOpen(false), { defer: true }));
  onMount(() => {
    if (!orgsLoaded()) void refreshOrgs().catch(() => {});
  });
  return (
    <div class="app">
      <a href="#main" class="skip-link">
        Skip to content
      </a>
      <header class="topbar">
        <Show when={withNav()}>
          <button
            type="button"
            class="nav-toggle"
            aria-expanded={navOpen()}
            aria-controls="side-nav"
            onClick={() => setNavOpen(!navOpen())}
          >
            <span aria-hidden="true">☰</span>
            <span class="sr-only">Menu</span>
          </button>
        </Show>
        <A href="/" class="brand" aria-label="LLM Gateway home">
          <span class="brand-mark" aria-hidden="true">
            ◆
          </span>
          <span class="brand-name">LLM Gateway</span>
        </A>
        <OrgSwitcher />
        <div class="topbar-spacer" />
        <Show when={withNav()}>
          <PresenceStack />
          <LiveIndicator />
        </Show>
        <UserMenu />
      </header>
      <div class="layout" classList={{ 'with-nav': withNav() }}>
        <Show when={withNav()}>
          <div class="sidenav-col">
            <SideNav open={navOpen()} />
          </div>
        </Show>
        <main id="main" class="main" tabindex="-1">
          {props.children}
        </main>
      </div>
    </div>
  );
}
