/**
 * A newest-first list read page by page (request log, transactions, audit log): the first page,
 * "Load more", and live merging of the newest page over what is shown. Ids are increasing numbers
 * (as strings), which is how merged pages find where they meet.
 */
import { onCleanup } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function createCursorList<T extends { id: string }>(opts: {
  /** What the list shows (its filters); an answer that arrives after it changed is dropped. */
  key: () => unknown;
  fetch: (cursor: string | null) => Promise<Page<T>>;
}) {
  const [state, setState] = createStore({ items: [] as T[], nextCursor: null as string | null, loaded: false, error: null as unknown });

  async function loadFirst(): Promise<void> {
    const key = opts.key();
    try {
      const page = await opts.fetch(null);
      if (key !== opts.key()) return;
      setState('items', reconcile(page.items, { key: 'id' }));
      setState({ nextCursor: page.nextCursor, loaded: true, error: null });
    } catch (err) {
      setState('error', err);
    }
  }

  /** The next page, appended (rows already shown, moved down by live merges, are not repeated). */
  async function loadMore(): Promise<void> {
    if (!state.nextCursor) return;
    const key = opts.key();
    const page = await opts.fetch(state.nextCursor);
    if (key !== opts.key()) return;
    const shown = new Set(state.items.map((i) => i.id));
    setState('items', (items) => [...items, ...page.items.filter((i) => !shown.has(i.id))]);
    setState('nextCursor', page.nextCursor);
  }

  /**
   * The newest page merged over what is shown, keeping the pages loaded with "Load more". When the
   * newest page does not reach what is shown (more arrived than a page holds), it starts over from
   * that page. Returns the ids that were not shown before.
   */
  async function mergeNewest(): Promise<string[]> {
    const key = opts.key();
    const page = await opts.fetch(null).catch(() => null);
    if (!page || key !== opts.key() || !state.loaded) return [];
    const shown = new Set(state.items.map((i) => i.id));
    const fetched = new Set(page.items.map((i) => i.id));
    const oldest = page.items.length ? BigInt(page.items[page.items.length - 1]!.id) : null;
    const older = oldest === null ? [] : state.items.filter((i) => BigInt(i.id) < oldest && !fetched.has(i.id));
    const keepOlder = page.nextCursor === null || page.items.some((i) => shown.has(i.id));
    setState('items', reconcile(keepOlder ? [...page.items, ...older] : page.items, { key: 'id' }));
    if (!keepOlder) setState('nextCursor', page.nextCursor);
    return page.items.filter((i) => !shown.has(i.id)).map((i) => i.id);
  }

  function reset(): void {
    setState({ items: [], nextCursor: null, loaded: false, error: null });
  }

  return { state, loadFirst, loadMore, mergeNewest, reset };
}

/** Runs `fn` at most once every `ms` however often it is asked (live events arrive in bursts). */
export function createThrottle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  onCleanup(() => clearTimeout(timer));
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      fn();
    }, Math.max(0, last + ms - Date.now()));
  };
}
