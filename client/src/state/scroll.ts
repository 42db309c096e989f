/** Scroll position helpers for live lists. */
import { createSignal, onCleanup, onMount, type Accessor } from 'solid-js';

/**
 * Whether the page is scrolled to (near) its top: live lists merge new rows only then, and queue
 * them behind an "N new" control while the reader is further down.
 */
export function createAtTop(slackPx = 120): Accessor<boolean> {
  const [atTop, setAtTop] = createSignal(true);
  onMount(() => {
    const onScroll = () => setAtTop(window.scrollY < slackPx);
    onScroll();
    window.addEventListener('scroll', onScroll, { passive: true });
    onCleanup(() => window.removeEventListener('scroll', onScroll));
  });
  return atTop;
}
