/**
 * A modal confirmation built on <dialog>: focus is trapped and Escape cancels, natively. A
 * destructive one starts on Cancel (Enter does not destroy by accident); on close, focus returns
 * to what had it before (the button that opened it), once that is enabled again.
 * With `input` it also asks for a short text (a reason) and runs `action` while it stays open, so a
 * refusal from the server is shown where the person acted, and they can correct or cancel.
 */
import { createEffect, createSignal, createUniqueId, Show, type JSX } from 'solid-js';
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

/**
 * Gives focus back to `el` after a dialog closes. A button that opened the dialog is often
 * disabled while its action runs: focus moves once it is enabled again (unless the person went
 * elsewhere meanwhile). A button that is gone (its row was removed) hands focus to the page.
 */
export function restoreFocus(el: Element | null) {
  if (!(el instanceof HTMLElement)) return;
  const idle = () => document.activeElement === null || document.activeElement === document.body;
  const attempt = () => {
    if (!el.isConnected) {
      if (idle()) document.getElementById('main')?.focus({ preventScroll: true });
      return true;
    }
    if ((el as HTMLButtonElement).disabled) return false;
    if (idle()) el.focus({ preventScroll: true });
    return true;
  };
  if (attempt()) return;
  const observer = new MutationObserver(() => {
    if (attempt()) stop();
  });
  const timer = setTimeout(() => stop(), 15_000);
  const stop = () => {
    observer.disconnect();
    clearTimeout(timer);
  };
  observer.observe(el, { attributes: true, attributeFilter: ['disabled'] });
  // A removed row: watch the document for the button leaving it.
  observer.observe(document.body, { childList: true, subtree: true });
}

/**
 * The element that last received focus. A button that opens a dialog is often disabled by its own
 * click (its action is pending) before the dialog opens, and browsers that apply the focus fixup
 * rule (Chromium 150 does) then move focus to the body; the dialog still returns focus to it.
 */
let lastFocused: Element | null = null;
if (typeof document !== 'undefined') {
  document.addEventListener('focusin', (e) => {
    if (e.target instanceof Element && e.target !== document.body) lastFocused = e.target;
  }, true);
}

/** What had focus before a dialog opens: the focused element, or the one focus was just taken from. */
function currentOpener(): Element | null {
  const active = document.activeElement;
  if (active && active !== document.body) return active;
  // Only the case above: focus left a control because it was disabled, not because the person
  // clicked on an empty part of the page.
  return lastFocused?.isConnected && (lastFocused as HTMLButtonElement).disabled ? lastFocused : active;
}

/** Opens a <dialog> modally and focuses its `data-autofocus` control (Cancel for destructive ones). */
export function openDialog(dialog: HTMLDialogElement): Element | null {
  const opener = currentOpener();
  dialog.showModal();
  dialog.querySelector<HTMLElement>('[data-autofocus]')?.focus();
  return opener;
}

/**
 * A modal <dialog> holding one form (open it with openDialog): Escape closes it unless an action is
 * pending; submitting runs `onSubmit` (the form never navigates).
 */
export function FormDialog(props: { ref: (el: HTMLDialogElement) => void; titleId: string; testId?: string; pending: boolean; onClose: () => void; onSubmit: () => void; children: JSX.Element }) {
  return (
    <dialog
      ref={props.ref}
      class="dialog"
      aria-labelledby={props.titleId}
      data-testid={props.testId}
      onCancel={(e) => {
        e.preventDefault();
        if (!props.pending) props.onClose();
      }}
    >
      <form
        method="dialog"
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          props.onSubmit();
        }}
      >
        {props.children}
      </form>
    </dialog>
  );
}

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
  let opener: Element | null = null;

  const close = (ok: boolean) => {
    const r = request();
    setRequest(null);
    if (dialog.open) dialog.close();
    r?.resolve(ok);
    restoreFocus(opener);
    opener = null;
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
      opener = openDialog(dialog);
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
                    data-autofocus
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
              <button type="button" class="btn btn-secondary" disabled={pending()} onClick={() => close(false)} data-autofocus={!r().input && r().danger ? '' : undefined}>
                Cancel
              </button>
              <button
                type="submit"
                class={`btn ${r().danger ? 'btn-danger' : 'btn-primary'}`}
                data-autofocus={!r().input && !r().danger ? '' : undefined}
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
