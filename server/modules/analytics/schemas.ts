import { z } from 'zod';
import { id } from '../../../shared/schemas.js';

export const MAX_RANGE_DAYS = 400;
const when = z.coerce.date({ message: 'must be a date (ISO 8601 or a Date)' });

const range = z
  .object({ orgId: id, projectId: id.optional(), from: when, to: when })
  .refine((r) => r.from.getTime() < r.to.getTime(), { message: 'from must be before to', path: ['from'] })
  .refine((r) => r.to.getTime() - r.from.getTime() <= MAX_RANGE_DAYS * 86_400_000, { message: `the range can be at most ${MAX_RANGE_DAYS} days`, path: ['to'] });

export const summaryInput = range;
export const timeseriesInput = z
  .object({ orgId: id, projectId: id.optional(), from: when, to: when, bucket: z.enum(['hour', 'day']).default('hour') })
  .refine((r) => r.from.getTime() < r.to.getTime(), { message: 'from must be before to', path: ['from'] })
  .refine((r) => r.to.getTime() - r.from.getTime() <= MAX_RANGE_DAYS * 86_400_000, { message: `the range can be at most ${MAX_RANGE_DAYS} days`, path: ['to'] })
  .refine((r) => r.bucket === 'day' || r.to.getTime() - r.from.getTime() <= 93 * 86_400_000, { message: 'hourly buckets cover at most 93 days; use bucket "day"', path: ['bucket'] });
export const breakdownInput = z
  .object({ orgId: id, projectId: id.optional(), from: when, to: when, by: z.enum(['model', 'provider', 'project', 'apiKey', 'endpoint']), limit: z.number().int().min(1).max(500).optional() })
  .refine((r) => r.from.getTime() < r.to.getTime(), { message: 'from must be before to', path: ['from'] })
  .refine((r) => r.to.getTime() - r.from.getTime() <= MAX_RANGE_DAYS * 86_400_000, { message: `the range can be at most ${MAX_RANGE_DAYS} days`, path: ['to'] });

const cursor = z.string().regex(/^\d{1,18}$/, { message: 'cursor is not valid' });
export const logsListInput = z.object({
  orgId: id,
  projectId: id.optional(),
  cursor: cursor.optional(),
  limit: z.number().int().min(1).max(200).optional(),
  apiKeyId: id.optional(),
  model: z.string().trim().min(1).max(200).optional(),
  provider: z.string().trim().min(1).max(40).optional(),
  /** 'chat.completions', 'messages', 'responses' or 'embeddings'. */
  endpoint: z.string().trim().min(1).max(40).optional(),
  status: z.enum(['success', 'error']).optional(),
  cached: z.boolean().optional(),
  from: when.optional(),
  to: when.optional(),
  /** Text searched (case-insensitive) in the retained request and response bodies, within at most SEARCH_MAX_DAYS. */
  search: z.string().trim().min(1).max(200).optional(),
});
/** A body search covers at most this many days (the last SEARCH_DEFAULT_DAYS when `from` is not given). */
export const SEARCH_MAX_DAYS = 31;
export const SEARCH_DEFAULT_DAYS = 7;
export const logGetInput = z.object({ orgId: id, logId: cursor });
