import { A, Navigate, Route, Router, useLocation, useNavigate, useParams, type RouteSectionProps } from '@solidjs/router';
import { createEffect, lazy, Match, onMount, Show, Switch, untrack, type Component, type ParentProps } from 'solid-js';
import { render } from 'solid-js/web';
import { OrgLayout } from './layout/OrgLayout.js';
import { Shell } from './layout/Shell.js';
import { loadMe, me, meError } from './state/session.js';
import { ErrorState, Loading } from './ui/components.js';
import { ConfirmHost } from './ui/confirm.js';
import { NoticeBanner } from './ui/notice.js';
import { ToastHost } from './ui/toast.js';
import './styles.css';

/** A page loaded on first visit (its own chunk): the first load carries only the shell and the page shown. */
function page<M extends { [P in K]: Component<any> }, K extends keyof M>(load: () => Promise<M>, name: K) {
  return lazy(() =>
    load().then(
      (m) => {
        sessionStorage.removeItem('chunk-reload');
        return { default: m[name] };
      },
      (err: unknown) => {
        // A tab opened before a deploy asks for chunks that are gone: load the new version once.
        if (!sessionStorage.getItem('chunk-reload')) {
          sessionStorage.setItem('chunk-reload', String(Date.now()));
          location.reload();
        }
        throw err;
      },
    ),
  );
}

const AccountPage = page(() => import('./pages/Account.js'), 'AccountPage');
const AnalyticsPage = page(() => import('./pages/Analytics.js'), 'AnalyticsPage');
const ApiKeysPage = page(() => import('./pages/ApiKeys.js'), 'ApiKeysPage');
const AuditPage = page(() => import('./pages/Audit.js'), 'AuditPage');
const SignInPage = page(() => import('./pages/Auth.js'), 'SignInPage');
const SignUpPage = page(() => import('./pages/Auth.js'), 'SignUpPage');
const SignInLinkPage = page(() => import('./pages/Auth.js'), 'SignInLinkPage');
const AuthFrame = page(() => import('./pages/Auth.js'), 'AuthFrame');
const ForgotPasswordPage = page(() => import('./pages/Auth.js'), 'ForgotPasswordPage');
const ResetPasswordPage = page(() => import('./pages/Auth.js'), 'ResetPasswordPage');
const EmailLinkPage = page(() => import('./pages/Auth.js'), 'EmailLinkPage');
const BillingPage = page(() => import('./pages/billing/BillingPage.js'), 'BillingPage');
const TransactionsPage = page(() => import('./pages/billing/Transactions.js'), 'TransactionsPage');
const HomePage = page(() => import('./pages/Home.js'), 'HomePage');
const InvitePage = page(() => import('./pages/Invite.js'), 'InvitePage');
const LogsPage = page(() => import('./pages/Logs.js'), 'LogsPage');
const NewOrganizationPage = page(() => import('./pages/NewOrganization.js'), 'NewOrganizationPage');
const OverviewPage = page(() => import('./pages/Overview.js'), 'OverviewPage');
const ProjectsPage = page(() => import('./pages/Projects.js'), 'ProjectsPage');
const ProviderKeysPage = page(() => import('./pages/ProviderKeys.js'), 'ProviderKeysPage');
const ProvidersPage = page(() => import('./pages/Providers.js'), 'ProvidersPage');
const SettingsPage = page(() => import('./pages/Settings.js'), 'SettingsPage');
const TeamPage = page(() => import('./pages/Team.js'), 'TeamPage');
const WebhooksPage = page(() => import('./pages/Webhooks.js'), 'WebhooksPage');

/** The frame of every page: the session is known before any route renders. */
function App(props: RouteSectionProps) {
  const location = useLocation();
  onMount(() => void loadMe().catch(() => {}));
  // Move focus to the page on navigation so screen readers and keyboards start at the top.
  createEffect(() => {
    void location.pathname; // tracked: the effect reruns on every navigation
    queueMicrotask(() => document.getElementById('main')?.focus({ preventScroll: true }));
  });
  return (
    <>
      <NoticeBanner />
      <Switch>
        <Match when={meError() && me() === undefined}>
          <main class="auth-page" id="main">
            <ErrorState error={meError()} retry={() => void loadMe().catch(() => {})} />
          </main>
        </Match>
        <Match when={me() === undefined}>
          <main class="auth-page" id="main">
            <Loading />
          </main>
        </Match>
        <Match when={true}>{props.children}</Match>
      </Switch>
      <ToastHost />
      <ConfirmHost />
    </>
  );
}

/** Signed-in routes: send visitors to sign in, then back here. */
function RequireAuth(props: ParentProps) {
  const navigate = useNavigate();
  const location = useLocation();
  createEffect(() => {
    if (me() === null) navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
  });
  return <Show when={me()}>{props.children}</Show>;
}

/** Signed-out routes (sign in, sign up): a visitor already signed in goes on to the dashboard.
 *  Checked on arrival only: after signing in here, the page itself navigates on. */
function GuestOnly(props: ParentProps) {
  const navigate = useNavigate();
  const location = useLocation();
  const signedIn = untrack(() => !!me());
  onMount(() => {
    if (!signedIn) return;
    const next = new URLSearchParams(location.search).get('next');
    navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
  });
  return <Show when={!signedIn}>{props.children}</Show>;
}

function PlainLayout(props: RouteSectionProps) {
  return (
    <RequireAuth>
      <Shell>{props.children}</Shell>
    </RequireAuth>
  );
}

function OrgSection(props: RouteSectionProps) {
  return (
    <RequireAuth>
      <OrgLayout {...props} />
    </RequireAuth>
  );
}

function OrgIndex() {
  const params = useParams<{ orgId: string }>();
  return <Navigate href={`/org/${params.orgId}/overview`} />;
}

function NotFoundPage() {
  return (
    <AuthFrame title="Page not found">
      <p class="muted">There is nothing at this address.</p>
      <A class="btn btn-primary btn-block" href="/">
        Go to the dashboard
      </A>
    </AuthFrame>
  );
}

render(
  () => (
    <Router root={App}>
      <Route path="/signin" component={() => <GuestOnly><SignInPage /></GuestOnly>} />
      <Route path="/signup" component={() => <GuestOnly><SignUpPage /></GuestOnly>} />
      <Route path={['/signin/link', '/sign-in/link']} component={SignInLinkPage} />
      <Route path="/invite/:token" component={InvitePage} />
      <Route path="/forgot-password" component={ForgotPasswordPage} />
      <Route path="/reset-password" component={ResetPasswordPage} />
      <Route path="/verify-email" component={() => <EmailLinkPage kind="verify" />} />
      <Route path="/confirm-email" component={() => <EmailLinkPage kind="confirm" />} />
      <Route path="/org/:orgId" component={OrgSection}>
        <Route path="/" component={OrgIndex} />
        <Route path="/overview" component={OverviewPage} />
        <Route path="/analytics" component={AnalyticsPage} />
        <Route path="/logs" component={LogsPage} />
        <Route path="/keys" component={ApiKeysPage} />
        <Route path="/provider-keys" component={ProviderKeysPage} />
        <Route path="/providers" component={ProvidersPage} />
        <Route path="/webhooks" component={WebhooksPage} />
        <Route path="/projects" component={ProjectsPage} />
        <Route path="/team" component={TeamPage} />
        <Route path="/billing" component={BillingPage} />
        <Route path="/billing/transactions" component={TransactionsPage} />
        <Route path="/settings" component={SettingsPage} />
        <Route path="/audit" component={AuditPage} />
      </Route>
      <Route component={PlainLayout}>
        <Route path="/" component={HomePage} />
        <Route path="/account" component={AccountPage} />
        <Route path="/orgs/new" component={NewOrganizationPage} />
      </Route>
      <Route path="*404" component={NotFoundPage} />
    </Router>
  ),
  document.getElementById('root')!,
);
