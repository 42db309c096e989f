/**
 * Filters kept in the query string: a filtered view can be shared, survives a reload, and the
 * browser's back/forward step through the filter changes. Only values that differ from the
 * defaults are written; unknown or malformed values in the URL fall back to the default.
 */
import { useLocation, useNavigate } from '@solidjs/router';
import { createEffect, on } from 'solid-js';

export interface FiltersInUrl<F extends Record<keyof F, string>> {
  /** The filters the page opened with (from its URL). */
  initial: F;
  /** Records an applied filter set in the URL (a new history entry when it changed). */
  write(filters: F): void;
}

/**
 * `params`: the URL name of each filter (e.g. apiKeyId -> "key"). `allowed`: the values a filter
 * may take, when it is a choice. `onRestore` runs when the URL changes under the page (back/forward).
 */
export function filtersInUrl<F extends Record<keyof F, string>>(
  defaults: F,
  params: Record<keyof F, string>,
  allowed: Partial<Record<keyof F, readonly string[]>>,
  onRestore: (filters: F) => void,
): FiltersInUrl<F> {
  const location = useLocation();
  const navigate = useNavigate();
  const keys = Object.keys(defaults) as (keyof F)[];

  const parse = (search: string): F => {
    const q = new URLSearchParams(search);
    const out = { ...defaults };
    for (const key of keys) {
      const value = q.get(params[key]);
      if (value === null || value.length > 500) continue;
      const choices = allowed[key];
      if (choices && !choices.includes(value)) continue;
      (out as Record<keyof F, string>)[key] = value;
    }
    return out;
  };
  const serialize = (filters: F): string => {
    const q = new URLSearchParams();
    for (const key of keys) if (filters[key] !== defaults[key]) q.set(params[key], filters[key]!);
    const text = q.toString();
    return text ? `?${text}` : '';
  };
  /** The query string as this page's filters would write it (other parameters are not ours). */
  const normalized = (search: string) => serialize(parse(search));
  /** What `write` put in the URL last: its own navigation is not a restore. */
  let written: string | null = null;

  createEffect(
    on(
      () => location.search,
      (search, previous) => {
        if (previous === undefined || normalized(search) === normalized(previous) || normalized(search) === written) return;
        written = null;
        onRestore(parse(search));
      },
    ),
  );

  return {
    initial: parse(location.search),
    write(filters) {
      const next = serialize(filters);
      if (next === normalized(location.search)) return;
      written = next;
      navigate(`${location.pathname}${next}${location.hash}`, { scroll: false });
    },
  };
}
