/** Small building blocks shared by every page. */
import { createEffect, createSignal, createUniqueId, For, Show, splitProps, type JSX, type ParentProps } from 'solid-js';
import { errorMessage } from '../api.js';
import { hueOf, initials } from './format.js';
import { toast } from './toast.js';

type ButtonVariant = 'primary' | 'secondary' | 'danger' | 'ghost';

export function Button(
  props: ParentProps<JSX.ButtonHTMLAttributes<HTMLButtonElement> & { variant?: ButtonVariant; loading?: boolean; size?: 'sm' | 'md' }>,
) {
  const [local, rest] = splitProps(props, ['variant', 'loading', 'size', 'class', 'children', 'disabled', 'type']);
  return (
    <button
      {...rest}
      type={local.type ?? 'button'}
      class={`btn btn-${local.variant ?? 'secondary'}${local.size === 'sm' ? ' btn-sm' : ''}${local.class ? ` ${local.class}` : ''}`}
      disabled={local.disabled || local.loading}
      aria-busy={local.loading ? 'true' : undefined}
    >
      <Show when={local.loading}>
        <span class="spinner" aria-hidden="true" />
      </Show>
      {local.children}
    </button>
  );
}

interface FieldProps {
  label: string;
  error?: string | undefined;
  hint?: JSX.Element;
  children: (id: string, describedBy: string | undefined) => JSX.Element;
}

/** A label, the control, a hint and the field's error, wired with ids for assistive technology. */
export function Field(props: FieldProps) {
  const id = createUniqueId();
  const describedBy = () => [props.hint ? `${id}-hint` : '', props.error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class="field" classList={{ 'field-invalid': !!props.error }}>
      <label for={id}>{props.label}</label>
      {props.children(id, describedBy())}
      <Show when={props.hint}>
        <p class="field-hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      </Show>
      <Show when={props.error}>
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      </Show>
    </div>
  );
}

export function TextField(
  props: {
    label: string;
    value: string;
    onInput: (v: string) => void;
    error?: string | undefined;
    hint?: JSX.Element;
  } & Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'value' | 'onInput'>,
) {
  const [local, rest] = splitProps(props, ['label', 'value', 'onInput', 'error', 'hint']);
  return (
    <Field label={local.label} error={local.error} hint={local.hint}>
      {(id, describedBy) => (
        <input
          {...rest}
          id={id}
          class="input"
          value={local.value}
          onInput={(e) => local.onInput(e.currentTarget.value)}
          aria-invalid={local.error ? 'true' : undefined}
          aria-describedby={describedBy}
        />
      )}
    </Field>
  );
}

export function SelectField<T extends string>(props: {
  label: string;
  value: T;
  options: readonly { value: T; label: string }[];
  onChange: (v: T) => void;
  disabled?: boolean;
  error?: string | undefined;
  hint?: JSX.Element;
}) {
  return (
    <Field label={props.label} error={props.error} hint={props.hint}>
      {(id, describedBy) => (
        <select
          id={id}
          class="input"
          value={props.value}
          disabled={props.disabled}
          aria-describedby={describedBy}
          onChange={(e) => props.onChange(e.currentTarget.value as T)}
        >
          {/* `selected` too: options that arrive or change after the value (loaded lists) keep it shown. */}
          <For each={props.options}>{(o) => <option value={o.value} selected={o.value === props.value}>{o.label}</option>}</For>
        </select>
      )}
    </Field>
  );
}

export function Card(props: ParentProps<{ title?: string; description?: JSX.Element; actions?: JSX.Element; class?: string; id?: string }>) {
  const headingId = createUniqueId();
  return (
    <section class={`card${props.class ? ` ${props.class}` : ''}`} aria-labelledby={props.title ? headingId : undefined} id={props.id}>
      <Show when={props.title || props.actions}>
        <header class="card-header">
          <div>
            <Show when={props.title}>
              <h2 id={headingId} class="card-title">
                {props.title}
              </h2>
            </Show>
            <Show when={props.description}>
              <p class="card-description">{props.description}</p>
            </Show>
          </div>
          <Show when={props.actions}>
            <div class="card-actions">{props.actions}</div>
          </Show>
        </header>
      </Show>
      {props.children}
    </section>
  );
}

export function PageHeader(props: { title: string; description?: JSX.Element; actions?: JSX.Element }) {
  createEffect(() => {
    document.title = `${props.title} · LLM Gateway`;
  });
  return (
    <header class="page-header">
      <div>
        <h1>{props.title}</h1>
        <Show when={props.description}>
          <p class="page-description">{props.description}</p>
        </Show>
      </div>
      <Show when={props.actions}>
        <div class="page-actions">{props.actions}</div>
      </Show>
    </header>
  );
}

/** The footer of a cursor-paged list: "Load more" while there is a next page. */
export function LoadMoreFooter(props: { more: boolean; loading: boolean; onLoad: () => void }) {
  return (
    <Show when={props.more}>
      <div class="card-footer">
        <Button loading={props.loading} onClick={() => props.onLoad()}>
          Load more
        </Button>
      </div>
    </Show>
  );
}

export function Loading(props: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      <span>{props.label ?? 'Loading…'}</span>
    </div>
  );
}

export function ErrorState(props: { error: unknown; retry?: () => void }) {
  return (
    <div class="error-state" role="alert">
      <p>{errorMessage(props.error)}</p>
      <Show when={props.retry}>
        <Button size="sm" onClick={() => props.retry?.()}>
          Try again
        </Button>
      </Show>
    </div>
  );
}

/** A list's loading states: its children once loaded; before that a spinner, or the error with a retry. */
export function LoadState(props: ParentProps<{ loaded: boolean; error: unknown; retry: () => void; loading?: JSX.Element }>) {
  return (
    <Show when={props.loaded} fallback={<Show when={props.error} fallback={props.loading === undefined ? <Loading /> : props.loading}><ErrorState error={props.error} retry={props.retry} /></Show>}>
      {props.children}
    </Show>
  );
}

export function EmptyState(props: ParentProps<{ title: string }>) {
  return (
    <div class="empty-state">
      <p class="empty-title">{props.title}</p>
      {props.children}
    </div>
  );
}

export function Badge(props: ParentProps<{ tone?: 'neutral' | 'accent' | 'success' | 'warning' | 'danger' }>) {
  return <span class={`badge badge-${props.tone ?? 'neutral'}`}>{props.children}</span>;
}

export function Avatar(props: { name: string; id: string; size?: 'sm' | 'md'; title?: string }) {
  return (
    <span
      class={`avatar avatar-${props.size ?? 'md'}`}
      style={{ '--avatar-hue': String(hueOf(props.id)) }}
      title={props.title ?? props.name}
      aria-hidden="true"
    >
      {initials(props.name)}
    </span>
  );
}

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard access needs a secure context or permission; fall back to a hidden textarea.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/** A read-only value (a link, a token, a secret) with a Copy button. */
export function CopyField(props: { label: string; value: string; hint?: JSX.Element; testId?: string }) {
  const [copied, setCopied] = createSignal(false);
  const copy = async () => {
    if (await copyText(props.value)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } else toast.error('Copying failed; select the text and copy it by hand.');
  };
  return (
    <Field label={props.label} hint={props.hint}>
      {(id, describedBy) => (
        <div class="copy-field">
          <input
            id={id}
            class="input input-mono"
            readOnly
            value={props.value}
            aria-describedby={describedBy}
            data-testid={props.testId}
            onFocus={(e) => e.currentTarget.select()}
          />
          <Button onClick={copy} aria-label={`Copy ${props.label.toLowerCase()}`}>
            {copied() ? 'Copied' : 'Copy'}
          </Button>
        </div>
      )}
    </Field>
  );
}

/** Wraps an async action with a loading flag and an error toast. */
export function createAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>, opts: { onError?: (err: unknown) => void } = {}) {
  const [pending, setPending] = createSignal(false);
  const run = async (...args: A): Promise<R | undefined> => {
    if (pending()) return undefined;
    setPending(true);
    try {
      return await fn(...args);
    } catch (err) {
      if (opts.onError) opts.onError(err);
      else toast.error(errorMessage(err));
      return undefined;
    } finally {
      setPending(false);
    }
  };
  return [pending, run] as const;
}
