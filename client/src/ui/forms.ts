/** Client-side validation with the same zod schemas the server uses. */
import type { z } from 'zod';
import { capitalize } from '../api.js';

export type FieldErrors = Record<string, string>;

export function validate<S extends z.ZodType>(schema: S, value: unknown): { ok: true; data: z.output<S> } | { ok: false; errors: FieldErrors } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, data: result.data };
  const errors: FieldErrors = {};
  for (const issue of result.error.issues) {
    const key = String(issue.path[0] ?? '');
    if (!errors[key]) errors[key] = capitalize(issue.message);
  }
  return { ok: false, errors };
}
