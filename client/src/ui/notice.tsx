/** A notice that outlives navigation: "You were removed from Acme", "Acme was deleted". */
import { createSignal, Show } from 'solid-js';

const [notice, setNotice] = createSignal<string | null>(null);

export function showNotice(message: string) {
  setNotice(message);
}

export function NoticeBanner() {
  return (
    <Show when={notice()}>
      {(message) => (
        <div class="notice" role="alert">
          <span>{message()}</span>
          <button type="button" class="btn btn-ghost btn-sm" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}
    </Show>
  );
}
