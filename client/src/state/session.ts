/** Who is signed in. `undefined` while loading, `null` when signed out. */
import { createSignal } from 'solid-js';
import { api, onUnauthorized, type RouterOutputs } from '../api.js';

export type Me = NonNullable<RouterOutputs['auth']['me']>['user'];

const [me, setMe] = createSignal<Me | null | undefined>(undefined);
const [meError, setMeError] = createSignal<unknown>(null);
export { me, meError, setMe };

// The session ended under us: the signed-in routes send the visitor to sign in.
onUnauthorized(() => {
  if (me()) setMe(null);
});

export async function loadMe(): Promise<Me | null> {
  setMeError(null);
  try {
    const result = await api.auth.me.query();
    setMe(result?.user ?? null);
    return result?.user ?? null;
  } catch (err) {
    setMeError(err);
    throw err;
  }
}

/**
 * Ends the session on the server (which also closes this session's WebSockets) and reloads the
 * app, so no state of the previous user survives in this tab.
 */
export async function signOut(next = '/signin'): Promise<void> {
  try {
    await api.auth.signOut.mutate();
  } finally {
    localStorage.removeItem(LAST_ORG_KEY);
    location.assign(next);
  }
}

export const LAST_ORG_KEY = 'gateway.lastOrgId';
