/**
 * A list loaded from the API and reloaded when something changes (a live event, an action). Rows
 * are reconciled by id, so a reload keeps the rows' identity (and their open menus and forms).
 */
import { createStore, reconcile } from 'solid-js/store';

export interface ReloadingList<T> {
  state: { items: T[]; loaded: boolean; error: unknown };
  /** Loads again; a failure is kept in `state.error` (the last good items stay). */
  load(): Promise<void>;
  /** Back to "not loaded" (the list's input changed). */
  reset(): void;
}

/** `fetch` answers the list, or null when its answer is stale (its input changed while it ran). */
export function createReloadingList<T extends { id: string }>(fetch: () => Promise<T[] | null>): ReloadingList<T> {
  const [state, setState] = createStore({ items: [] as T[], loaded: false, error: null as unknown });
  return {
    state,
    async load() {
      try {
        const list = await fetch();
        if (list === null) return;
        setState('items', reconcile(list, { key: 'id' }));
        setState({ loaded: true, error: null });
      } catch (err) {
        setState('error', err);
      }
    },
    reset() {
      setState({ items: [], loaded: false, error: null });
    },
  };
}
