/** Account: profile (name, email), password, sessions, two-factor authentication, personal API tokens. */
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js';
import {
  changeEmailInput,
  changePasswordInput,
  tokenCreateInput,
  twoFactorCodeInput,
  twoFactorDisableInput,
  updateProfileInput,
} from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { me, setMe, signOut } from '../state/session.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, CopyField, copyText, createAction, ErrorState, Loading, PageHeader, TextField } from '../ui/components.js';
import { formatDate, formatDateTime } from '../ui/format.js';
import { validate, type FieldErrors } from '../ui/forms.js';
import { toast } from '../ui/toast.js';

export function AccountPage() {
  return (
    <div class="page page-narrow">
      <PageHeader
        title="Account and security"
        description="Your name and email, password, where you are signed in, two-factor authentication and personal API tokens."
        actions={<Button onClick={() => void signOut()}>Sign out</Button>}
      />
      <ProfileCard />
      <EmailCard />
      <PasswordCard />
      <SessionsCard />
      <TwoFactorCard />
      <TokensCard />
    </div>
  );
}

function ProfileCard() {
  const [name, setName] = createSignal(me()?.name ?? '');
  const [error, setError] = createSignal<string | undefined>();
  const [saving, save] = createAction(
    async () => {
      const checked = validate(updateProfileInput, { name: name() });
      if (!checked.ok) return setError(checked.errors.name);
      const { user } = await api.auth.updateProfile.mutate(checked.data);
      setMe((m) => (m ? { ...m, ...user } : m));
      setName(user.name);
      setError(undefined);
      toast.success('Name saved.');
    },
    { onError: (err) => setError(fieldErrorsOf(err).name ?? errorMessage(err)) },
  );
  return (
    <Card title="Profile" description="Your name is shown to the members of your organizations.">
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
        novalidate
      >
        <TextField label="Name" autocomplete="name" value={name()} onInput={setName} error={error()} maxLength={100} />
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={saving()} disabled={name().trim() === (me()?.name ?? '')}>
            Save name
          </Button>
        </div>
      </form>
    </Card>
  );
}

function EmailCard() {
  const verified = () => !!me()?.emailVerified;
  const [email, setEmail] = createSignal('');
  const [error, setError] = createSignal<string | undefined>();
  /** A change asked for: the link is on its way to the new address. */
  const [pendingChange, setPendingChange] = createSignal<{ email: string; expiresAt: Date } | null>(null);
  const [changing, change] = createAction(
    async () => {
      const checked = validate(changeEmailInput, { email: email() });
      if (!checked.ok) return setError(checked.errors.email);
      const result = await api.auth.changeEmail.mutate(checked.data);
      setPendingChange({ email: result.email, expiresAt: result.expiresAt });
      setEmail('');
      setError(undefined);
    },
    { onError: (err) => setError(fieldErrorsOf(err).email ?? errorMessage(err)) },
  );
  const [sending, send] = createAction(async () => {
    const result = await api.auth.sendVerificationEmail.mutate();
    if (result.alreadyVerified) {
      setMe((m) => (m ? { ...m, emailVerified: true } : m));
      toast.success('Your address is already confirmed.');
    } else toast.success(`Confirmation link sent to ${result.email}.`);
  });
  return (
    <Card
      title="Email address"
      description="Where sign-in links, password resets and invitations are sent."
      actions={<Badge tone={verified() ? 'success' : 'warning'}>{verified() ? 'Confirmed' : 'Not confirmed'}</Badge>}
    >
      <p class="account-email">
        <strong data-testid="account-email">{me()?.email}</strong>
      </p>
      <Show when={!verified()}>
        <div class="reveal" role="status">
          <p>
            Confirm this address with the link we emailed you. Until then, invitations sent to it do not show on your home page (anyone could sign up
            with an address that is not theirs).
          </p>
          <div class="form-actions">
            <Button size="sm" loading={sending()} onClick={() => void send()}>
              Send the link again
            </Button>
          </div>
        </div>
      </Show>
      <Show when={pendingChange()}>
        {(p) => (
          <div class="reveal" role="status" data-testid="email-change-pending">
            <p>
              We have emailed a link to <strong>{p().email}</strong>. Your address changes when you open it (within an hour, by{' '}
              {formatDateTime(p().expiresAt)}). Until then, keep using {me()?.email}.
            </p>
          </div>
        )}
      </Show>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void change();
        }}
        novalidate
      >
        <TextField label="New email address" type="email" autocomplete="email" value={email()} onInput={setEmail} error={error()} />
        <div class="form-actions">
          <Button type="submit" loading={changing()} disabled={!email().trim()}>
            Change email
          </Button>
        </div>
      </form>
    </Card>
  );
}

function PasswordCard() {
  const [current, setCurrent] = createSignal('');
  const [password, setPassword] = createSignal('');
  const [confirm, setConfirm] = createSignal('');
  const [errors, setErrors] = createSignal<FieldErrors>({});
  const [saving, save] = createAction(
    async () => {
      const checked = validate(changePasswordInput, { currentPassword: current(), password: password() });
      if (!checked.ok) return setErrors(checked.errors);
      if (confirm() !== password()) return setErrors({ confirm: 'The two new passwords are not the same' });
      const result = await api.auth.changePassword.mutate(checked.data);
      setCurrent('');
      setPassword('');
      setConfirm('');
      setErrors({});
      const n = result.otherSessionsEnded;
      toast.success(`Password changed.${n ? ` ${n === 1 ? 'One other session was' : `${n} other sessions were`} signed out.` : ''}`);
    },
    {
      onError: (err) => {
        const fields = fieldErrorsOf(err);
        const message = errorMessage(err);
        if (/current password/i.test(message)) fields.currentPassword = message;
        else if (/new password/i.test(message)) fields.password = message;
        else if (!Object.keys(fields).length) toast.error(message);
        setErrors(fields);
      },
    },
  );
  return (
    <Card title="Password" description="Changing it signs you out on every other device and browser.">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
        novalidate
      >
        <TextField label="Current password" type="password" autocomplete="current-password" value={current()} onInput={setCurrent} error={errors().currentPassword} />
        <div class="field-row">
          <TextField
            label="New password"
            type="password"
            autocomplete="new-password"
            value={password()}
            onInput={setPassword}
            error={errors().password}
            hint="At least 10 characters."
          />
          <TextField label="New password again" type="password" autocomplete="new-password" value={confirm()} onInput={setConfirm} error={errors().confirm} />
        </div>
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={saving()}>
            Change password
          </Button>
        </div>
      </form>
    </Card>
  );
}

/** "Chrome on macOS" from a User-Agent string (enough to recognise one's own devices). */
export function describeUserAgent(ua: string | null): string {
  if (!ua) return 'Unknown browser';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\//.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /(Chrome|Chromium|HeadlessChrome)\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua)
            ? 'Safari'
            : (ua.split(/[\s/]/)[0] ?? 'Unknown browser');
  const os = /iPhone|iPad/.test(ua)
    ? 'iOS'
    : /Android/.test(ua)
      ? 'Android'
      : /Mac OS X|Macintosh/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : null;
  return os ? `${browser} on ${os}` : browser;
}

function SessionsCard() {
  const [sessions, { refetch }] = createResource(() => api.auth.sessions.list.query());
  const others = () => (sessions() ?? []).filter((s) => !s.current).length;
  const [revoking, revokeOthers] = createAction(async () => {
    const ok = await confirmAction({
      title: 'Sign out everywhere else?',
      body: 'Every other browser and device signed in to your account is signed out at once, including its live connections. This one stays signed in.',
      confirmLabel: 'Sign out other sessions',
      danger: true,
    });
    if (!ok) return;
    const { ended } = await api.auth.sessions.revokeOthers.mutate();
    toast.success(ended ? `${ended === 1 ? 'One other session was' : `${ended} other sessions were`} signed out.` : 'No other sessions were signed in.');
    void refetch();
  });
  const revokeOne = async (s: { id: string; userAgent: string | null }) => {
    try {
      await api.auth.sessions.revoke.mutate({ id: s.id });
      toast.success(`${describeUserAgent(s.userAgent)} signed out.`);
      void refetch();
    } catch (err) {
      toast.error(errorMessage(err));
    }
  };
  return (
    <Card
      title="Where you are signed in"
      description="Browsers and devices with an open session. Last active is updated about once an hour."
      actions={
        <Button size="sm" loading={revoking()} disabled={!others()} onClick={() => void revokeOthers()}>
          Sign out everywhere else
        </Button>
      }
    >
      <Switch>
        <Match when={sessions.error}>
          <ErrorState error={sessions.error} retry={() => void refetch()} />
        </Match>
        <Match when={!sessions() && sessions.loading}>
          <Loading />
        </Match>
        <Match when={sessions()}>
          {(list) => (
            <ul class="session-list" data-testid="sessions">
              <For each={list()}>
                {(s) => (
                  <li class="session-row">
                    <div class="session-main">
                      <span class="cell-title">{describeUserAgent(s.userAgent)}</span>
                      <Show when={s.current}>
                        <Badge tone="accent">This session</Badge>
                      </Show>
                      <span class="muted session-meta">
                        {s.ip ? `${s.ip} · ` : ''}signed in {formatDateTime(s.createdAt)} · last active {formatDateTime(s.lastSeenAt)}
                      </span>
                    </div>
                    <Show when={!s.current}>
                      <Button size="sm" variant="ghost" class="text-danger" onClick={() => void revokeOne(s)}>
                        Sign out<span class="sr-only"> {describeUserAgent(s.userAgent)}</span>
                      </Button>
                    </Show>
                  </li>
                )}
              </For>
            </ul>
          )}
        </Match>
      </Switch>
    </Card>
  );
}

function TwoFactorCard() {
  const [setup, setSetup] = createSignal<RouterOutputs['auth']['twoFactor']['setup'] | null>(null);
  /** Recovery codes just issued: shown once, until the user says they are saved. */
  const [recoveryCodes, setRecoveryCodes] = createSignal<string[] | null>(null);
  const [code, setCode] = createSignal('');
  const [codeError, setCodeError] = createSignal<string | undefined>();
  const enabled = () => !!me()?.twoFactorEnabled;
  const [status, { refetch: refetchStatus }] = createResource(
    () => (enabled() ? me()?.id : undefined),
    () => api.auth.twoFactor.status.query(),
  );

  const [starting, start] = createAction(async () => {
    setSetup(await api.auth.twoFactor.setup.mutate());
    setCode('');
    setCodeError(undefined);
  });
  const onCodeError = (err: unknown) => setCodeError(fieldErrorsOf(err).code ?? errorMessage(err));
  const [enabling, enable] = createAction(
    async () => {
      const checked = validate(twoFactorCodeInput, { code: code().trim() });
      if (!checked.ok) return setCodeError(checked.errors.code);
      const { user, recoveryCodes: issued } = await api.auth.twoFactor.enable.mutate(checked.data);
      setMe((m) => (m ? { ...m, ...user } : m));
      setSetup(null);
      setCode('');
      setRecoveryCodes(issued);
      toast.success('Two-factor authentication is on.');
    },
    { onError: onCodeError },
  );
  const [regenerating, regenerate] = createAction(
    async () => {
      const checked = validate(twoFactorCodeInput, { code: code().trim() });
      if (!checked.ok) return setCodeError(checked.errors.code);
      const ok = await confirmAction({
        title: 'Make new recovery codes?',
        body: 'Your current recovery codes stop working at once.',
        confirmLabel: 'Make new codes',
      });
      if (!ok) return;
      const { recoveryCodes: issued } = await api.auth.twoFactor.regenerateRecoveryCodes.mutate(checked.data);
      setCode('');
      setRecoveryCodes(issued);
      void refetchStatus();
      toast.success('New recovery codes made; the old ones no longer work.');
    },
    { onError: onCodeError },
  );
  const [disabling, disable] = createAction(
    async () => {
      const checked = validate(twoFactorDisableInput, { code: code().trim() });
      if (!checked.ok) return setCodeError(checked.errors.code);
      const { user } = await api.auth.twoFactor.disable.mutate(checked.data);
      setMe((m) => (m ? { ...m, ...user } : m));
      setCode('');
      setRecoveryCodes(null);
      toast.success('Two-factor authentication is off.');
    },
    { onError: onCodeError },
  );

  const codeField = (label: string, opts: { recovery?: boolean; hint?: string } = {}) => (
    <TextField
      label={label}
      hint={opts.hint}
      inputMode={opts.recovery ? 'text' : 'numeric'}
      autocomplete="one-time-code"
      maxLength={opts.recovery ? 40 : 6}
      value={code()}
      onInput={(v) => {
        setCode(v);
        setCodeError(undefined);
      }}
      error={codeError()}
    />
  );

  return (
    <Card
      title="Two-factor authentication"
      description="Ask for a code from an authenticator app at sign-in."
      actions={<Badge tone={enabled() ? 'success' : 'neutral'}>{enabled() ? 'On' : 'Off'}</Badge>}
    >
      <Show when={recoveryCodes()}>{(codes) => <RecoveryCodes codes={codes()} email={me()?.email ?? ''} onDone={() => setRecoveryCodes(null)} />}</Show>
      <Switch>
        <Match when={enabled()}>
          <p class="muted" data-testid="recovery-codes-left">
            <Show when={status()} fallback="Recovery codes: …">
              {(s) => `${s().recoveryCodesLeft} of 10 recovery codes left.${s().recoveryCodesLeft <= 3 ? ' Make new ones soon.' : ''}`}
            </Show>
          </p>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void disable();
            }}
            novalidate
          >
            {codeField('Current code from your app (or a recovery code, to turn it off)', {
              recovery: true,
              hint: 'Making new recovery codes needs a code from your app; turning two-factor authentication off also accepts a recovery code.',
            })}
            <div class="form-actions">
              <Button loading={regenerating()} onClick={() => void regenerate()}>
                Make new recovery codes
              </Button>
              <Button type="submit" variant="danger" loading={disabling()}>
                Turn off two-factor authentication
              </Button>
            </div>
          </form>
        </Match>
        <Match when={setup()}>
          {(s) => (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void enable();
              }}
              novalidate
            >
              <ol class="steps">
                <li>Scan this QR code with your authenticator app (or add the secret key by hand, or open the setup link on this device).</li>
                <li>Enter the 6-digit code the app shows.</li>
              </ol>
              <img class="totp-qr" src={s().qrCode} width="200" height="200" alt="QR code of the two-factor setup link, for your authenticator app" data-testid="totp-qr" />
              <div class="totp-secret">
                <CopyField label="Secret key" value={s().secret} testId="totp-secret" />
              </div>
              <CopyField label="Setup link (otpauth)" value={s().otpauthUri} />
              {codeField('Code from the app')}
              <p class="muted">Turning it on signs you out everywhere else.</p>
              <div class="form-actions">
                <Button type="submit" variant="primary" loading={enabling()}>
                  Turn on
                </Button>
                <Button onClick={() => setSetup(null)}>Cancel</Button>
              </div>
            </form>
          )}
        </Match>
        <Match when={true}>
          <p class="muted">Recommended for everyone, and especially for owners.</p>
          <div class="form-actions">
            <Button variant="primary" loading={starting()} onClick={() => void start()}>
              Set up two-factor authentication
            </Button>
          </div>
        </Match>
      </Switch>
    </Card>
  );
}

/** Recovery codes, shown once: copy them, download them, then confirm they are kept somewhere safe. */
function RecoveryCodes(props: { codes: string[]; email: string; onDone: () => void }) {
  const text = () =>
    [`LLM Gateway recovery codes for ${props.email}`, 'Each code signs in once, in place of a code from your authenticator app.', '', ...props.codes, ''].join('\n');
  const copy = async () => {
    if (await copyText(text())) toast.success('Recovery codes copied.');
    else toast.error('Copying failed; select the codes and copy them by hand.');
  };
  const download = () => {
    const url = URL.createObjectURL(new Blob([text()], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'llm-gateway-recovery-codes.txt';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div class="reveal" role="status" data-testid="recovery-codes">
      <p>
        <strong>Save your recovery codes.</strong> If you lose your authenticator, each code signs you in once. They are shown only now.
      </p>
      <ol class="recovery-codes input-mono">
        <For each={props.codes}>{(c) => <li>{c}</li>}</For>
      </ol>
      <div class="form-actions">
        <Button onClick={() => void copy()}>Copy codes</Button>
        <Button onClick={download}>Download codes</Button>
        <Button variant="ghost" onClick={() => props.onDone()}>
          I have saved them
        </Button>
      </div>
    </div>
  );
}

function TokensCard() {
  const [tokens, { refetch }] = createResource(() => api.auth.tokens.list.query());
  const [name, setName] = createSignal('');
  const [nameError, setNameError] = createSignal<string | undefined>();
  const [created, setCreated] = createSignal<{ name: string; token: string } | null>(null);

  const [creating, create] = createAction(
    async () => {
      const checked = validate(tokenCreateInput, { name: name() });
      if (!checked.ok) return setNameError(checked.errors.name);
      const result = await api.auth.tokens.create.mutate(checked.data);
      setCreated({ name: result.name, token: result.token });
      setName('');
      setNameError(undefined);
      void refetch();
    },
    { onError: (err) => setNameError(fieldErrorsOf(err).name ?? errorMessage(err)) },
  );
  const revoke = async (t: { id: string; name: string }) => {
    const ok = await confirmAction({
      title: `Revoke “${t.name}”?`,
      body: 'Programs using this token lose access at once, including open WebSocket streams.',
      confirmLabel: 'Revoke token',
      danger: true,
    });
    if (!ok) return;
    try {
      await api.auth.tokens.revoke.mutate({ id: t.id });
      toast.success(`Token “${t.name}” revoked.`);
      if (created()?.name === t.name) setCreated(null);
      void refetch();
    } catch (err) {
      toast.error(errorMessage(err));
    }
  };

  return (
    <Card title="Personal API tokens" description="For programs that use the typed API client: send as “Authorization: Bearer <token>”. They act with your permissions.">
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
        novalidate
      >
        <TextField label="Token name" value={name()} onInput={setName} error={nameError()} placeholder="e.g. CI deploy script" />
        <div class="form-actions">
          <Button type="submit" variant="primary" loading={creating()}>
            Create token
          </Button>
        </div>
      </form>
      <Show when={created()}>
        {(c) => (
          <div class="reveal" role="status">
            <CopyField label={`New token “${c().name}”`} value={c().token} testId="new-token" hint="Copy it now: it is shown only once." />
            <Button size="sm" variant="ghost" onClick={() => setCreated(null)}>
              I have copied it
            </Button>
          </div>
        )}
      </Show>
      <Switch>
        <Match when={tokens.error}>
          <ErrorState error={tokens.error} retry={() => void refetch()} />
        </Match>
        <Match when={!tokens() && tokens.loading}>
          <Loading />
        </Match>
        <Match when={tokens()?.length === 0}>
          <p class="muted">No tokens yet.</p>
        </Match>
        <Match when={tokens()}>
          {(list) => (
            <div class="table-wrap">
              <table class="table table-stack">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col" class="hide-sm">Created</th>
                    <th scope="col">Last used</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={list()}>
                    {(t) => (
                      <tr>
                        <td class="cell-title">{t.name}</td>
                        <td class="nowrap hide-sm">{formatDate(t.createdAt)}</td>
                        <td data-label="Last used" class="nowrap">{t.lastUsedAt ? formatDateTime(t.lastUsedAt) : 'Never'}</td>
                        <td class="row-actions">
                          <Button size="sm" variant="ghost" class="text-danger" onClick={() => void revoke(t)}>
                            Revoke<span class="sr-only"> {t.name}</span>
                          </Button>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </div>
          )}
        </Match>
      </Switch>
    </Card>
  );
}
