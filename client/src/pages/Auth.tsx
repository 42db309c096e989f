/** Sign in (with the second step for TOTP), sign up, and the emailed links: password reset, email verification, new address. */
import { A, useNavigate, useSearchParams } from '@solidjs/router';
import { createEffect, createSignal, onMount, Show, type ParentProps } from 'solid-js';
import { requestPasswordResetInput, resetPasswordInput, signInInput, signUpInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf } from '../api.js';
import { refreshOrgs } from '../state/orgs.js';
import { loadMe, me } from '../state/session.js';
import { Button, TextField } from '../ui/components.js';
import { validate, type FieldErrors } from '../ui/forms.js';

/** Only same-app paths are followed after sign-in (no open redirects). */
function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function withNext(path: string, params: { next?: string | undefined; email?: string | undefined }) {
  const q = new URLSearchParams();
  if (params.email) q.set('email', params.email);
  if (params.next) q.set('next', params.next);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function AuthFrame(props: ParentProps<{ title: string; subtitle?: string }>) {
  createEffect(() => {
    document.title = `${props.title} · LLM Gateway`;
  });
  return (
    <main class="auth-page" id="main">
      <div class="auth-card">
        <div class="auth-brand">
          <span class="brand-mark" aria-hidden="true">
            ◆
          </span>{' '}
          LLM Gateway
        </div>
        <h1>{props.title}</h1>
        <Show when={props.subtitle}>
          <p class="muted">{props.subtitle}</p>
        </Show>
        {props.children}
      </div>
    </main>
  );
}

function FormError(props: { message: string | null }) {
  return (
    <Show when={props.message}>
      <p class="form-error" role="alert">
        {props.message}
      </p>
    </Show>
  );
}

export function SignInPage() {
  const [search] = useSearchParams<{ email?: string; next?: string }>();
  const navigate = useNavigate();
  const [email, setEmail] = createSignal(search.email ?? '');
  const [password, setPassword] = createSignal('');
  const [code, setCode] = createSignal('');
  const [needsCode, setNeedsCode] = createSignal(false);
  /** The second step with a recovery code instead of the authenticator's code. */
  const [useRecovery, setUseRecovery] = createSignal(false);
  /** Past the account's failed-attempts threshold: a one-time link was emailed (if the password was right). */
  const [linkSent, setLinkSent] = createSignal(false);
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const next = safeNext(search.next);
    const second = needsCode() ? (useRecovery() ? { recoveryCode: code().trim() } : { totp: code().trim() }) : {};
    const input = { email: email(), password: password(), ...second };
    const checked = validate(signInInput, input);
    if (!checked.ok) {
      if (!password()) checked.errors.password = 'Enter your password';
      if (checked.errors.recoveryCode) checked.errors.totp = checked.errors.recoveryCode;
      return setErrors(checked.errors);
    }
    setErrors({});
    setPending(true);
    try {
      const result = await api.auth.signIn.mutate(checked.data);
      if ('emailLinkRequired' in result) {
        setLinkSent(true);
        return;
      }
      if ('twoFactorRequired' in result) {
        setNeedsCode(true);
        queueMicrotask(() => document.getElementById('totp-field')?.querySelector('input')?.focus());
        return;
      }
      await loadMe();
      await refreshOrgs().catch(() => {});
      navigate(next, { replace: true });
    } catch (err) {
      const fields = fieldErrorsOf(err);
      if (fields.recoveryCode) fields.totp = fields.recoveryCode;
      setErrors(fields);
      setFormError(errorMessage(err));
      // Refused at the code step for the password (an account under attack checks both together):
      // let the password be typed again.
      if (needsCode() && /password/.test(errorMessage(err)) && !/code is not valid/.test(errorMessage(err))) {
        setNeedsCode(false);
        setPassword('');
        setCode('');
      }
    } finally {
      setPending(false);
    }
  };

  return (
    <Show
      when={!linkSent()}
      fallback={
        <AuthFrame title="Check your email">
          <p role="status">
            Many wrong passwords were tried for this account recently, so a password alone does not sign in for now. If the password was right, we have
            emailed a one-time sign-in link to <strong>{email()}</strong>. It works once, for 15 minutes.
          </p>
          <p class="muted">No email after a few minutes? Check the password and try again.</p>
          <Button
            class="btn-block"
            onClick={() => {
              setLinkSent(false);
              setPassword('');
            }}
          >
            Try again
          </Button>
        </AuthFrame>
      }
    >
      <AuthFrame title="Sign in" subtitle="Welcome back. Sign in to your dashboard.">
        <form onSubmit={submit} novalidate>
          <TextField label="Email" type="email" autocomplete="email" value={email()} onInput={setEmail} error={errors().email} readOnly={needsCode()} required />
          <TextField
            label="Password"
            type="password"
            autocomplete="current-password"
            value={password()}
            onInput={setPassword}
            error={errors().password}
            readOnly={needsCode()}
            required
          />
          <Show when={needsCode()}>
            <div id="totp-field">
              <Show
                when={useRecovery()}
                fallback={
                  <TextField
                    label="Authentication code"
                    inputMode="numeric"
                    autocomplete="one-time-code"
                    maxLength={6}
                    value={code()}
                    onInput={setCode}
                    error={errors().totp}
                    hint="Two-factor authentication is on for this account. Enter the 6-digit code from your authenticator app."
                  />
                }
              >
                <TextField
                  label="Recovery code"
                  autocomplete="off"
                  maxLength={40}
                  value={code()}
                  onInput={setCode}
                  error={errors().totp}
                  hint="One of the recovery codes you saved when you turned on two-factor authentication (like abcde-fghij). Each works once."
                />
              </Show>
              <button
                type="button"
                class="link-button"
                onClick={() => {
                  setUseRecovery(!useRecovery());
                  setCode('');
                  setErrors({});
                  queueMicrotask(() => document.getElementById('totp-field')?.querySelector('input')?.focus());
                }}
              >
                {useRecovery() ? 'Use a code from the authenticator app' : 'Lost your authenticator? Use a recovery code'}
              </button>
            </div>
          </Show>
          <FormError message={formError()} />
          <Button type="submit" variant="primary" class="btn-block" loading={pending()}>
            {needsCode() ? 'Verify and sign in' : 'Sign in'}
          </Button>
        </form>
        <p class="auth-switch">
          <A href={withNext('/forgot-password', { email: email() || undefined })}>Forgot your password?</A>
        </p>
        <p class="auth-switch">
          New here? <A href={withNext('/signup', { next: search.next, email: email() || undefined })}>Create an account</A>
        </p>
      </AuthFrame>
    </Show>
  );
}

/**
 * The emailed one-time link (`/signin/link?token=...`). It signs in when the visitor presses the
 * button, not on load: mail scanners that open links must not spend it.
 */
export function SignInLinkPage() {
  const [search] = useSearchParams<{ token?: string }>();
  const navigate = useNavigate();
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  /** The server refused the link itself (used, expired, unknown): pressing again cannot help. */
  const [refused, setRefused] = createSignal(false);
  const signIn = async () => {
    setFormError(null);
    setPending(true);
    try {
      await api.auth.signInWithLink.mutate({ token: search.token ?? '' });
      await loadMe();
      await refreshOrgs().catch(() => {});
      navigate('/', { replace: true });
    } catch (err) {
      const code = (err as { data?: { code?: string } } | null)?.data?.code;
      setRefused(code === 'UNAUTHORIZED' || code === 'BAD_REQUEST' || code === 'NOT_FOUND');
      setFormError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return (
    <AuthFrame title="Sign in with your link" subtitle="This link from your email signs you in once, within 15 minutes of being sent.">
      <Show when={search.token} fallback={<FormError message="This link is incomplete; open it from the email again, or sign in." />}>
        <FormError message={formError()} />
        <Show when={!refused()}>
          <Button variant="primary" class="btn-block" loading={pending()} onClick={() => void signIn()}>
            Sign in
          </Button>
        </Show>
      </Show>
      <p class="auth-switch">
        <A href="/signin">Back to sign in</A>
      </p>
    </AuthFrame>
  );
}

export function SignUpPage() {
  const [search] = useSearchParams<{ email?: string; next?: string }>();
  const navigate = useNavigate();
  const [name, setName] = createSignal('');
  const [email, setEmail] = createSignal(search.email ?? '');
  const [password, setPassword] = createSignal('');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  const [checkEmail, setCheckEmail] = createSignal<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const next = safeNext(search.next ?? '/orgs/new');
    const checked = validate(signUpInput, { name: name(), email: email(), password: password() });
    if (!checked.ok) return setErrors(checked.errors);
    setErrors({});
    setPending(true);
    try {
      await api.auth.signUp.mutate(checked.data);
      // A taken address gets the same answer but no session (its owner is emailed): then say so.
      if (!(await loadMe())) {
        setCheckEmail(checked.data.email);
        return;
      }
      await refreshOrgs().catch(() => {});
      navigate(next, { replace: true });
    } catch (err) {
      setErrors(fieldErrorsOf(err));
      setFormError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };

  return (
    <Show
      when={!checkEmail()}
      fallback={
        <AuthFrame title="Check your email">
          <p role="status">
            We have sent an email to <strong>{checkEmail()}</strong>. If this address already has an account, the email says how to sign in; nothing
            was changed.
          </p>
          <A class="btn btn-primary btn-block" href={withNext('/signin', { next: search.next, email: checkEmail() ?? undefined })}>
            Sign in
          </A>
        </AuthFrame>
      }
    >
      <AuthFrame title="Create your account" subtitle="Route, meter and share LLM traffic with your team.">
        <form onSubmit={submit} novalidate>
          <TextField label="Name" autocomplete="name" value={name()} onInput={setName} error={errors().name} required />
          <TextField label="Email" type="email" autocomplete="email" value={email()} onInput={setEmail} error={errors().email} required />
          <TextField
            label="Password"
            type="password"
            autocomplete="new-password"
            value={password()}
            onInput={setPassword}
            error={errors().password}
            hint="At least 10 characters."
            required
          />
          <FormError message={formError()} />
          <Button type="submit" variant="primary" class="btn-block" loading={pending()}>
            Create account
          </Button>
        </form>
        <p class="auth-switch">
          Already have an account? <A href={withNext('/signin', { next: search.next, email: email() || undefined })}>Sign in</A>
        </p>
      </AuthFrame>
    </Show>
  );
}

/** "Forgot your password?": asks for the address; the answer is the same whether or not it has an account. */
export function ForgotPasswordPage() {
  const [search] = useSearchParams<{ email?: string }>();
  const [email, setEmail] = createSignal(search.email ?? '');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  const [sentTo, setSentTo] = createSignal<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const checked = validate(requestPasswordResetInput, { email: email() });
    if (!checked.ok) return setErrors(checked.errors);
    setErrors({});
    setPending(true);
    try {
      await api.auth.requestPasswordReset.mutate(checked.data);
      setSentTo(checked.data.email);
    } catch (err) {
      setErrors(fieldErrorsOf(err));
      setFormError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return (
    <Show
      when={!sentTo()}
      fallback={
        <AuthFrame title="Check your email">
          <p role="status">
            If <strong>{sentTo()}</strong> has an account, we have emailed it a link to choose a new password. The link works once, within an hour.
          </p>
          <p class="muted">No email after a few minutes? Check the address and your spam folder, then ask again.</p>
          <Button class="btn-block" onClick={() => setSentTo(null)}>
            Use another address
          </Button>
          <p class="auth-switch">
            <A href={withNext('/signin', { email: sentTo() ?? undefined })}>Back to sign in</A>
          </p>
        </AuthFrame>
      }
    >
      <AuthFrame title="Reset your password" subtitle="Enter the address of your account; we will email you a link to choose a new password.">
        <form onSubmit={submit} novalidate>
          <TextField label="Email" type="email" autocomplete="email" value={email()} onInput={setEmail} error={errors().email} required />
          <FormError message={formError()} />
          <Button type="submit" variant="primary" class="btn-block" loading={pending()}>
            Email me a reset link
          </Button>
        </form>
        <p class="auth-switch">
          Remembered it? <A href={withNext('/signin', { email: email() || undefined })}>Sign in</A>
        </p>
      </AuthFrame>
    </Show>
  );
}

/** The emailed reset link (`/reset-password?token=...`): a new password, then sign in with it. */
export function ResetPasswordPage() {
  const [search] = useSearchParams<{ token?: string }>();
  const [password, setPassword] = createSignal('');
  const [confirm, setConfirm] = createSignal('');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);
  const [refused, setRefused] = createSignal(false);
  const [doneFor, setDoneFor] = createSignal<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const checked = validate(resetPasswordInput, { token: search.token ?? '', password: password() });
    if (!checked.ok) return setErrors(checked.errors);
    if (confirm() !== password()) return setErrors({ confirm: 'The two passwords are not the same' });
    setErrors({});
    setPending(true);
    try {
      const result = await api.auth.resetPassword.mutate(checked.data);
      setDoneFor(result.email);
    } catch (err) {
      const code = (err as { data?: { code?: string } } | null)?.data?.code;
      setRefused(code === 'UNAUTHORIZED');
      setErrors(fieldErrorsOf(err));
      setFormError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  return (
    <Show
      when={!doneFor()}
      fallback={
        <AuthFrame title="Password changed">
          <p role="status">Your new password is set, and every session of your account was signed out. Sign in with the new password.</p>
          <A class="btn btn-primary btn-block" href={withNext('/signin', { email: doneFor() ?? undefined })}>
            Sign in
          </A>
        </AuthFrame>
      }
    >
      <AuthFrame title="Choose a new password" subtitle="This link from your email works once, within an hour of being sent.">
        <Show when={search.token} fallback={<FormError message="This link is incomplete; open it from the email again, or ask for a new one." />}>
          <Show
            when={!refused()}
            fallback={
              <>
                <FormError message={formError()} />
                <A class="btn btn-primary btn-block" href="/forgot-password">
                  Ask for a new link
                </A>
              </>
            }
          >
            <form onSubmit={submit} novalidate>
              <TextField
                label="New password"
                type="password"
                autocomplete="new-password"
                value={password()}
                onInput={setPassword}
                error={errors().password}
                hint="At least 10 characters."
                required
              />
              <TextField label="New password again" type="password" autocomplete="new-password" value={confirm()} onInput={setConfirm} error={errors().confirm} required />
              <FormError message={formError()} />
              <Button type="submit" variant="primary" class="btn-block" loading={pending()}>
                Set new password
              </Button>
            </form>
          </Show>
        </Show>
        <p class="auth-switch">
          <A href="/signin">Back to sign in</A>
        </p>
      </AuthFrame>
    </Show>
  );
}

/**
 * The emailed links that prove an address: `/verify-email?token=` (at sign-up) and
 * `/confirm-email?token=` (a new address). Opening one is the proof, so it is claimed on arrival.
 */
export function EmailLinkPage(props: { kind: 'verify' | 'confirm' }) {
  const [search] = useSearchParams<{ token?: string }>();
  const [state, setState] = createSignal<{ ok: true; email: string } | { ok: false; message: string } | null>(null);
  const claim = async () => {
    if (!search.token) return setState({ ok: false, message: 'This link is incomplete; open it from the email again.' });
    try {
      const input = { token: search.token };
      const result = props.kind === 'verify' ? await api.auth.verifyEmail.mutate(input) : await api.auth.confirmEmail.mutate(input);
      setState({ ok: true, email: result.email });
      if (me()) await loadMe().catch(() => {});
    } catch (err) {
      setState({ ok: false, message: errorMessage(err) });
    }
  };
  onMount(() => void claim());
  const title = () => (props.kind === 'verify' ? 'Confirm your email address' : 'Confirm your new email address');
  return (
    <AuthFrame title={title()}>
      <Show when={state()} fallback={<p class="muted" role="status">Checking the link…</p>}>
        {(s) => {
          const st = s();
          return st.ok ? (
            <>
              <p role="status">
                {props.kind === 'verify' ? 'Thank you: ' : 'Done: your account now uses '}
                <strong>{st.email}</strong>
                {props.kind === 'verify' ? ' is confirmed as your address. Invitations sent to it now show on your home page.' : ', confirmed. Sign in with it from now on.'}
              </p>
              <A class="btn btn-primary btn-block" href={me() ? '/' : withNext('/signin', { email: st.email })}>
                {me() ? 'Go to the dashboard' : 'Sign in'}
              </A>
            </>
          ) : (
            <>
              <FormError message={st.message} />
              <A class="btn btn-secondary btn-block" href={me() ? '/account' : '/signin'}>
                {me() ? 'Go to your account' : 'Sign in'}
              </A>
            </>
          );
        }}
      </Show>
    </AuthFrame>
  );
}

export { safeNext, withNext };
