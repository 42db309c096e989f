import { z } from 'zod';
import { id } from '../../../shared/schemas.js';

export const apiKeyName = z.string().trim().min(1, { message: 'key name is required' }).max(80, { message: 'key name must be at most 80 characters' });
export const apiKeyListInput = z.object({ projectId: id });
export const apiKeyCreateInput = z.object({
  projectId: id,
  name: apiKeyName,
  /** Requests per minute for this key; omitted or null: unlimited. */
  rpmLimit: z.number().int().min(1, { message: 'rpmLimit must be at least 1' }).max(1_000_000).nullish(),
});
export const apiKeyRevokeInput = z.object({ apiKeyId: id });
