/**
 * Horizontal bars over categories (models, providers): one row per category with its full name
 * and value, so labels never collide at any width; bars start at zero and scale to the largest.
 */
import { For } from 'solid-js';

export interface BarRow {
  key: string;
  label: string;
  value: number;
}

export function BarList(props: { rows: readonly BarRow[]; format: (v: number) => string; color: string; label: string; testId?: string }) {
  const max = () => Math.max(0, ...props.rows.map((r) => r.value));
  const share = (v: number) => (max() > 0 ? (v / max()) * 100 : 0);
  return (
    <ul class="bar-list" aria-label={props.label} data-testid={props.testId}>
      <For each={props.rows}>
        {(r) => (
          <li class="bar-row">
            <span class="bar-label" title={r.label}>
              {r.label}
            </span>
            <span class="bar-value num">{props.format(r.value)}</span>
            <span class="bar-track" aria-hidden="true">
              <span class="bar-fill" style={{ width: `${share(r.value)}%`, 'min-width': r.value > 0 ? '3px' : '0', background: props.color }} />
            </span>
          </li>
        )}
      </For>
    </ul>
  );
}
