/** Account: profile, two-factor authentication, personal API tokens, sign out. */
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js';
import { tokenCreateInput, twoFactorCodeInput, twoFactorDisableInput } from '../../../shared/schemas.js';
import { api, errorMessage, fieldErrorsOf, type RouterOutputs } from '../api.js';
import { me, setMe, signOut } from '../state/session.js';
import { confirmAction } from '../ui/confirm.js';
import { Badge, Button, Card, CopyField, copyText, createAction, ErrorState, Loading, PageHeader, TextField } from '../ui/components.js';
import { formatDate, formatDateTime } from '../ui/format.js';
import { validate } from '../ui/forms.js';
import { toast } from '../ui/toast.js';

export function AccountPage() {
  return (
    <div class="page page-narrow">
      <PageHeader title="Account and security" description="Your sign-in, two-factor authentication and personal API tokens." />
      <Card title="Profile">
        <dl class="facts">
          <div>
            <dt>Name</dt>
            <dd>{me()?.name}</dd>
          </div>
          <div>
            <dt>Email</dt>
            <dd>{me()?.email}</dd>
          </div>
        </dl>
        <div class="form-actions">
          <Button onClick={() => void signOut()}>Sign out</Button>
        </div>
      </Card>
      <TwoFactorCard />
      <TokensCard />
    </div>
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
