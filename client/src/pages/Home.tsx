/** "/": the last organization used, the first one, or the create-organization screen. */
import { useNavigate } from '@solidjs/router';
import { createSignal, onMount, Show } from 'solid-js';
import { defaultOrgPath, refreshOrgs } from '../state/orgs.js';
import { ErrorState, Loading } from '../ui/components.js';

export function HomePage() {
  const navigate = useNavigate();
  const [error, setError] = createSignal<unknown>(null);
  const go = async () => {
    setError(null);
    try {
      const list = await refreshOrgs();
      navigate(defaultOrgPath(list), { replace: true });
    } catch (err) {
      setError(err);
    }
  };
  onMount(() => void go());
  return (
    <div class="page">
      <Show when={error()} fallback={<Loading label="Opening your dashboard…" />}>
        <ErrorState error={error()} retry={() => void go()} />
      </Show>
    </div>
  );
}
