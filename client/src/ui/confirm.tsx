/**
 * A modal confirmation built on <dialog>: focus is trapped and Escape cancels, natively.
 * With `input` it also asks for a short text (a reason) and runs `action` while it stays open, so a
 * refusal from the server is shown where the person acted, and they can correct or cancel.
 */
import { createEffect, createSignal, createUniqueId, Show } from 'solid-js';
import { errorMessage } from '../api.js';

interface ConfirmRequest {
  title: string;
  body: string;
  confirmLabel: string;
  danger?: boolean;
  input?: { label: string; hint?: string; placeholder?: string; initial?: string };
  /** Runs on confirm while the dialog stays open; a thrown error is shown in the dialog. */
  action?: (value: string) => Promise<void>;
  resolve: (ok: boolean) => void;
}

const [request, setRequest] = createSignal<ConfirmRequest | null>(null);

export function confirmAction(opts: Omit<ConfirmRequest, 'resolve' | 'input' | 'action'>): Promise<boolean> {
  return new Promise((resolve) => setRequest({ ...opts, resolve }));
}

/** Asks for a text and runs `action` with it; resolves true once the action succeeded, false if canceled. */
export function confirmWithInput(
  opts: Omit<ConfirmRequest, 'resolve' | 'input' | 'action'> & { input: NonNullable<ConfirmRequest['input']>; action: (value: string) => Promise<void> },
): Promise<boolean> {
  return new Promise((resolve) => setRequest({ ...opts, resolve }));
}

export function ConfirmHost() {
  let dialog!: HTMLDialogElement;
  const inputId = createUniqueId();
  const [value, setValue] = createSignal('');
  const [error, setError] = createSignal<string | null>(null);
  const [pending, setPending] = createSignal(false);

  const close = (ok: boolean) => {
    const r = request();
    setRequest(null);
    if (dialog.open) dialog.close();
    r?.resolve(ok);
  };
  const confirm = async () => {
    const r = request();
    if (!r || pending()) return;
    if (!r.action) return close(true);
    setPending(true);
    setError(null);
    try {
      await r.action(value());
      close(true);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setPending(false);
    }
  };
  createEffect(() => {
    const r = request();
    if (r && !dialog.open) {
      setValue(r.input?.initial ?? '');
      setError(null);
      dialog.showModal();
    }
  });
  return (
    <dialog
      ref={(el) => {
        dialog = el;
      }}
      class="dialog"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        if (!pending()) close(false);
      }}
    >
      <Show when={request()}>
        {(r) => (
          <form
            method="dialog"
            onSubmit={(e) => {
              e.preventDefault();
              void confirm();
            }}
            novalidate
          >
            <h2 id="confirm-title">{r().title}</h2>
            <p>{r().body}</p>
            <Show when={r().input}>
              {(input) => (
                <div class="field" classList={{ 'field-invalid': !!error() }}>
                  <label for={inputId}>{input().label}</label>
                  <input
                    id={inputId}
                    class="input"
                    value={value()}
                    placeholder={input().placeholder}
                    onInput={(e) => setValue(e.currentTarget.value)}
                    aria-describedby={[input().hint ? `${inputId}-hint` : '', error() ? `${inputId}-error` : ''].filter(Boolean).join(' ') || undefined}
                    aria-invalid={error() ? 'true' : undefined}
                    autofocus
                    maxLength={500}
                  />
                  <Show when={input().hint}>
                    <p class="field-hint" id={`${inputId}-hint`}>
                      {input().hint}
                    </p>
                  </Show>
                </div>
              )}
            </Show>
            <Show when={error()}>
              <p class="form-error" role="alert" id={`${inputId}-error`} data-testid="dialog-error">
                {error()}
              </p>
            </Show>
            <div class="dialog-actions">
              <button type="button" class="btn btn-secondary" disabled={pending()} onClick={() => close(false)}>
                Cancel
              </button>
              <button
                type="submit"
                class={`btn ${r().danger ? 'btn-danger' : 'btn-primary'}`}
                autofocus={!r().input}
                disabled={pending()}
                aria-busy={pending() ? 'true' : undefined}
              >
                <Show when={pending()}>
                  <span class="spinner" aria-hidden="true" />
                </Show>
                {r().confirmLabel}
              </button>
            </div>
          </form>
        )}
      </Show>
    </dialog>
  );
}
