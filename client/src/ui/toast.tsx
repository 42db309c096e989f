/** Toasts: short confirmations and errors, announced to screen readers. */
import { For } from 'solid-js';
import { createStore, produce } from 'solid-js/store';

type ToastKind = 'success' | 'error' | 'info';
interface Toast { id: number; kind: ToastKind; message: string }

const [toasts, setToasts] = createStore<Toast[]>([]);
let nextId = 1;

function push(kind: ToastKind, message: string, ms = kind === 'error' ? 7000 : 3500) {
  const id = nextId++;
  setToasts(produce((list) => void list.push({ id, kind, message })));
  setTimeout(() => dismiss(id), ms);
}

function dismiss(id: number) {
  setToasts((list) => list.filter((t) => t.id !== id));
}

export const toast = {
  success: (message: string) => push('success', message),
  error: (message: string) => push('error', message),
  info: (message: string) => push('info', message),
};

export function ToastHost() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      <For each={toasts}>
        {(t) => (
          <div class={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : undefined}>
            <span>{t.message}</span>
            <button type="button" class="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        )}
      </For>
    </div>
  );
}
