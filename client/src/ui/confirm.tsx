/** A modal confirmation built on <dialog>: focus is trapped and Escape cancels, natively. */
import { createEffect, createSignal, Show } from 'solid-js';

interface ConfirmRequest {
  title: string;
  body: string;
  confirmLabel: string;
  danger?: boolean;
  resolve: (ok: boolean) => void;
}

const [request, setRequest] = createSignal<ConfirmRequest | null>(null);

export function confirmAction(opts: Omit<ConfirmRequest, 'resolve'>): Promise<boolean> {
  return new Promise((resolve) => setRequest({ ...opts, resolve }));
}

export function ConfirmHost() {
  let dialog!: HTMLDialogElement;
  const close = (ok: boolean) => {
    const r = request();
    setRequest(null);
    if (dialog.open) dialog.close();
    r?.resolve(ok);
  };
  createEffect(() => {
    if (request() && !dialog.open) dialog.showModal();
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
        close(false);
      }}
    >
      <Show when={request()}>
        {(r) => (
            <form
              method="dialog"
              onSubmit={(e) => {
                e.preventDefault();
                close(true);
              }}
            >
              <h2 id="confirm-title">{r().title}</h2>
              <p>{r().body}</p>
              <div class="dialog-actions">
                <button type="button" class="btn btn-secondary" onClick={() => close(false)}>
                  Cancel
                </button>
                <button type="submit" class={`btn ${r().danger ? 'btn-danger' : 'btn-primary'}`} autofocus>
                  {r().confirmLabel}
                </button>
              </div>
            </form>
        )}
      </Show>
    </dialog>
  );
}
