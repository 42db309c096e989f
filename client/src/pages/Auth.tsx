/** Sign in (with the second step for TOTP) and sign up. */
import { A, useNavigate, useSearchParams } from '@solidjs/router';
import { createEffect, createSignal, Show, type ParentProps } from 'solid-js';
import { signInInput, signUpInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf } from '../api.js';
import { refreshOrgs } from '../state/orgs.js';
import { loadMe } from '../state/session.js';
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
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [formError, setFormError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const next = safeNext(search.next);
    const input = { email: email(), password: password(), ...(needsCode() ? { totp: code().trim() } : {}) };
    const checked = validate(signInInput, input);
    if (!checked.ok) {
      if (!password()) checked.errors.password = 'Enter your password';
      return setErrors(checked.errors);
    }
    setErrors({});
    setPending(true);
    try {
      const result = await api.auth.signIn.mutate(checked.data);
      if ('twoFactorRequired' in result) {
        setNeedsCode(true);
        queueMicrotask(() => document.getElementById('totp-field')?.querySelector('input')?.focus());
        return;
      }
      await loadMe();
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
          </div>
        </Show>
        <FormError message={formError()} />
        <Button type="submit" variant="primary" class="btn-block" loading={pending()}>
          {needsCode() ? 'Verify and sign in' : 'Sign in'}
        </Button>
      </form>
      <p class="auth-switch">
        New here? <A href={withNext('/signup', { next: search.next, email: email() || undefined })}>Create an account</A>
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
      await loadMe();
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
  );
}

export { safeNext, withNext };
