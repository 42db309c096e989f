/**
 * Spend limits on screen (issue #12): a spent / limit meter with the time to reset, the amount +
 * period fields of a limit form, the request log's "refused by" marker, and the throttled live
 * refresh the limit views share (at most once per 2 s while traffic flows).
 */
import { createSignal, onCleanup, Show } from 'solid-js';
import type { LiveEvent } from '../../../shared/events.js';
import { LIMIT_PERIODS, PERIOD_WORDS, type LimitPeriod } from '../../../shared/limits.js';
import { SelectField, TextField } from './components.js';
import { formatDateTime, formatMoney } from './format.js';
import './limits.css';
import { percentOf, resetsIn } from './limits-text.js';

export { parseAmount, percentOf, refusedBy, resetsIn } from './limits-text.js';

export const PERIOD_LABELS: Record<LimitPeriod, string> = { day: 'Per day', week: 'Per week', month: 'Per month', lifetime: 'Lifetime (never resets)' };
export const PERIOD_OPTIONS = LIMIT_PERIODS.map((p) => ({ value: p, label: PERIOD_LABELS[p] }));
/** "per day", "per week", "per month", "in total". */
export const PERIOD_SHORT: Record<LimitPeriod, string> = { day: 'per day', week: 'per week', month: 'per month', lifetime: 'in total' };

/** A clock that ticks every 30 s (for "resets in ..." texts). */
function createNow() {
  const [now, setNow] = createSignal(Date.now());
  const timer = setInterval(() => setNow(Date.now()), 30_000);
  onCleanup(() => clearInterval(timer));
  return now;
}

const toneOf = (pct: number) => (pct >= 100 ? 'danger' : pct >= 80 ? 'warning' : pct >= 50 ? 'notice' : 'ok');

/**
 * "$1.20 of $5.00 per day · resets in 3 h" with a bar; without a limit, what was spent only.
 * `testId` marks the element whose text tests read.
 */
export function SpendMeter(props: {
  spent: string | null | undefined;
  limit: string | null | undefined;
  period?: LimitPeriod | null | undefined;
  resetsAt?: Date | string | null | undefined;
  label?: string;
  testId?: string;
  /** Text when there is no limit (default: "No limit"). */
  noLimit?: string;
}) {
  const now = createNow();
  const pct = () => (props.limit != null ? percentOf(props.spent ?? '0', props.limit) : 0);
  const reset = () => (props.limit != null && props.period !== 'lifetime' ? resetsIn(props.resetsAt, now()) : null);
  return (
    <div class="spend-meter" data-testid={props.testId} data-tone={props.limit != null ? toneOf(pct()) : 'none'}>
      <Show
        when={props.limit != null}
        fallback={
          <span class="spend-meter-text">
            <Show when={props.spent != null && props.spent !== '0.00' && props.spent !== '0'} fallback={<span class="muted">{props.noLimit ?? 'No limit'}</span>}>
              <span class="spend-meter-spent">{formatMoney(props.spent)}</span> <span class="muted">spent · {props.noLimit ?? 'no limit'}</span>
            </Show>
          </span>
        }
      >
        <span class="spend-meter-text">
          <span class="spend-meter-spent">{formatMoney(props.spent ?? '0')}</span>
          <span class="muted">
            {' '}
            of {formatMoney(props.limit)}
            {props.period ? ` ${PERIOD_SHORT[props.period]}` : ''}
          </span>
        </span>
        <div
          class="spend-meter-bar"
          role="progressbar"
          aria-label={props.label ?? 'Spent of the limit'}
          aria-valuemin="0"
          aria-valuemax="100"
          aria-valuenow={pct()}
          aria-valuetext={`${pct()}% used`}
        >
          <span class="spend-meter-fill" style={{ width: `${pct()}%` }} />
        </div>
        <span class="spend-meter-reset muted small" title={props.resetsAt ? `Resets ${formatDateTime(props.resetsAt)} (UTC periods)` : undefined}>
          {pct()}% used{reset() ? ` · ${reset()}` : props.period === 'lifetime' ? ' · never resets' : ''}
        </span>
      </Show>
    </div>
  );
}

/** The amount and period fields of a spend limit form. */
export function SpendLimitFields(props: {
  amountLabel?: string;
  amount: string;
  period: LimitPeriod;
  onAmount: (v: string) => void;
  onPeriod: (v: LimitPeriod) => void;
  error?: string | undefined;
  periodError?: string | undefined;
  disabled?: boolean;
  hint?: string;
  periods?: readonly LimitPeriod[];
  testId?: string;
}) {
  const options = () => (props.periods ? PERIOD_OPTIONS.filter((o) => props.periods!.includes(o.value)) : PERIOD_OPTIONS);
  return (
    <div class="limit-fields" data-testid={props.testId}>
      <TextField
        label={props.amountLabel ?? 'Spend limit ($)'}
        inputmode="decimal"
        placeholder="no limit"
        value={props.amount}
        onInput={props.onAmount}
        error={props.error}
        disabled={props.disabled}
        hint={props.hint ?? 'Empty: no limit. Periods are UTC.'}
      />
      <SelectField label="Period" value={props.period} options={options()} onChange={props.onPeriod} error={props.periodError} disabled={props.disabled} />
    </div>
  );
}

/** "the daily budget" style words for a limit's period. */
export const periodWord = (p: LimitPeriod) => PERIOD_WORDS[p];

const LIVE_THROTTLE_MS = 2000;
const SPEND_EVENTS: ReadonlySet<LiveEvent['type']> = new Set(['usage', 'credits.changed', 'limit.alert']);

/**
 * Calls `refresh` when spend moves (usage, credits, limit alerts), at most once per 2 s: the first
 * event refreshes at once, later ones within the window wait for its end (so the last change shows).
 */
export function createSpendRefresh(onEvent: (handler: (e: LiveEvent) => void) => void, refresh: () => void, extra?: (e: LiveEvent) => boolean) {
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = () => {
    last = Date.now();
    timer = undefined;
    refresh();
  };
  onCleanup(() => clearTimeout(timer));
  onEvent((e) => {
    if (!SPEND_EVENTS.has(e.type) && !extra?.(e)) return;
    if (timer) return;
    const wait = last + LIVE_THROTTLE_MS - Date.now();
    if (wait <= 0) fire();
    else timer = setTimeout(fire, wait);
  });
}
