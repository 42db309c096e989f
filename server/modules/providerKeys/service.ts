/**
 * Organization provider keys: sealed at rest (AES-256-GCM through SecretBox), never returned; the
 * last 4 characters identify them. Rotate by updating the key, disable by status. Every change
 * NOTIFYs the gateway so no instance keeps using a stale key.
 *
 * An organization may hold several keys for one built-in provider (a key pool, issue #11): the
 * gateway spreads that provider's calls across its active keys by `weight` (1..100). Names stay
 * unique in the organization (a custom provider's name is its model prefix); a second key for a
 * provider created without a name is called `<provider>-2`, `<provider>-3`, ...
 */
import { createPrivateKey, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ProviderKeyKind } from '../../../shared/models.js';
import type { SecretBox } from '../../auth/secrets.js';
import type { Work } from '../../events/unit-of-work.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { upstreamUrlProblem } from '../gateway/upstream/guard.js';
import { isReservedProviderName, MAX_KEY_WEIGHT, OPTIONS_SCHEMAS } from './schemas.js';
import type { RowOf } from '../../db/rows.js';
import type { ProviderKey } from './entities.js';

type ProviderKeyRow = RowOf<typeof ProviderKey, 'id' | 'org_id' | 'provider' | 'name' | 'base_url' | 'options' | 'last4' | 'status' | 'weight' | 'created_at' | 'updated_at'>;

function providerKeyView(r: ProviderKeyRow) {
  return {
    id: r.id,
    provider: r.provider,
    name: r.name,
    baseUrl: r.base_url,
    options: r.options,
    last4: r.last4,
    status: r.status,
    /** Share of this provider's calls among the organization's active keys for it (1..100). */
    weight: r.weight,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

const COLUMNS = 'id, org_id, provider, name, base_url, options, last4, status, weight, created_at, updated_at';

export async function listProviderKeys(em: EntityManager, orgId: string) {
  const rows = await em.execute<ProviderKeyRow[]>(`select ${COLUMNS} from provider_key where org_id = ? order by created_at`, [orgId]);
  return rows.map(providerKeyView);
}

function parseOptions(provider: ProviderKeyKind, options: Record<string, unknown> | undefined): Record<string, unknown> {
  const parsed = OPTIONS_SCHEMAS[provider].safeParse(options ?? {});
  if (!parsed.success) {
    throw badRequest(parsed.error.issues.map((i) => `options.${i.path.join('.') || '?'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

/** What is shown of a key: its last 4 characters (for a service account, of its private key id). */
function checkKey(provider: ProviderKeyKind, key: string, options: Record<string, unknown>): { last4: string; options: Record<string, unknown> } {
  if (provider !== 'vertex') {
    if (key.length < 8) throw badRequest('that key is too short to be a provider key');
    return { last4: key.slice(-4), options };
  }
  let account: { client_email?: unknown; private_key?: unknown; private_key_id?: unknown; project_id?: unknown };
  try {
    account = JSON.parse(key);
  } catch {
    throw badRequest('a Vertex AI key is the service account JSON file (with client_email and private_key)');
  }
  if (typeof account.client_email !== 'string' || typeof account.private_key !== 'string') {
    throw badRequest('the service account JSON needs client_email and private_key');
  }
  try {
    createPrivateKey(account.private_key);
  } catch {
    throw badRequest('the service account private_key is not a readable PEM key');
  }
  const projectId = options.projectId ?? account.project_id;
  if (typeof projectId !== 'string') throw badRequest('give options.projectId (the service account JSON has no project_id)');
  const keyId = typeof account.private_key_id === 'string' && account.private_key_id.length >= 4 ? account.private_key_id : account.client_email;
  return { last4: keyId.slice(-4), options: { ...options, projectId } };
}

/** A key's weight: a whole number from 1 to MAX_KEY_WEIGHT (the router's schema checks it too; other callers reach here). */
function checkWeight(weight: number): number {
  if (!Number.isInteger(weight) || weight < 1 || weight > MAX_KEY_WEIGHT) throw badRequest(`weight must be a whole number from 1 to ${MAX_KEY_WEIGHT}`);
  return weight;
}

function checkNameAndUrl(provider: ProviderKeyKind, name: string, baseUrl: string | null) {
  if (provider === 'custom') {
    if (!baseUrl) throw badRequest('a custom provider needs baseUrl (the OpenAI-compatible API root, e.g. https://llm.example.com/v1)');
    if (isReservedProviderName(name)) throw badRequest(`"${name}" names a built-in provider; choose another name for this custom provider`);
  } else if (baseUrl) {
    throw badRequest('baseUrl is only for custom OpenAI-compatible providers');
  }
}

/**
 * A tenant's base URL may not point into the operator's network (see gateway/upstream/guard.ts).
 * Resolving the host is a network call, so this runs before the command's transaction, never in
 * it; the gateway checks again on every new connection (DNS answers change).
 */
export async function vetBaseUrl(baseUrl: string | undefined, allowPrivateUpstreams: boolean): Promise<void> {
  if (baseUrl === undefined) return;
  const problem = await upstreamUrlProblem(baseUrl, allowPrivateUpstreams);
  if (problem) throw badRequest(problem);
}

async function nameTaken(em: EntityManager, orgId: string, name: string, exceptId: string | null) {
  const rows = await em.execute<RowOf<typeof ProviderKey, 'id'>[]>('select id from provider_key where org_id = ? and lower(name) = lower(?) and id <> ?', [
    orgId,
    name,
    exceptId ?? '00000000-0000-0000-0000-000000000000',
  ]);
  return rows.length > 0;
}

/** The first of `<provider>`, `<provider>-2`, `<provider>-3`, ... no key of the organization is named (case-insensitively). */
async function freeDefaultName(em: EntityManager, orgId: string, provider: string): Promise<string> {
  const rows = await em.execute<RowOf<typeof ProviderKey, 'name'>[]>(`select name from provider_key where org_id = ? and (lower(name) = lower(?) or lower(name) like lower(?))`, [
    orgId,
    provider,
    `${provider}-%`,
  ]);
  const taken = new Set(rows.map((r) => r.name.toLowerCase()));
  for (let n = 1; ; n++) {
    const name = n === 1 ? provider : `${provider}-${n}`;
    if (!taken.has(name.toLowerCase())) return name;
  }
}

export async function createProviderKey(
  work: Work,
  box: SecretBox,
  input: { orgId: string; userId: string; provider: ProviderKeyKind; key: string; name?: string; baseUrl?: string; options?: Record<string, unknown>; weight?: number },
) {
  const { em } = work;
  let name = input.name ?? input.provider;
  const weight = checkWeight(input.weight ?? 1);
  const baseUrl = input.baseUrl ?? null;
  checkNameAndUrl(input.provider, name, baseUrl);
  const checked = checkKey(input.provider, input.key, parseOptions(input.provider, input.options));
  // The organization row lock serializes name checks of concurrent creates (the unique index backs it up).
  await em.execute('select id from organization where id = ? for update', [input.orgId]);
  // Another key for a built-in provider, unnamed: the next free `<provider>-N` (a pool of keys for one provider).
  if (input.name === undefined && input.provider !== 'custom') name = await freeDefaultName(em, input.orgId, input.provider);
  if (await nameTaken(em, input.orgId, name, null)) {
    throw conflict(`a provider key named "${name}" already exists in this organization; give this one another name`);
  }
  const id = randomUUID();
  await em.execute(
    `insert into provider_key (id, org_id, provider, name, base_url, options, sealed_key, last4, status, weight, created_by, created_at, updated_at)
     values (?, ?, ?, ?, ?, ?::jsonb, ?, ?, 'active', ?, ?, now(), now())`,
    [id, input.orgId, input.provider, name, baseUrl, JSON.stringify(checked.options), box.seal(input.key), checked.last4, weight, input.userId],
  );
  await notifyInvalidation(work, { kind: 'providerKeys', orgId: input.orgId });
  work.audit(input.orgId, 'providerKey.created', { type: 'provider_key', id }, null, { provider: input.provider, name, baseUrl, last4: checked.last4, weight });
  work.emit(input.orgId, { type: 'providerKey.changed', providerKeyId: id, change: 'created' });
  const rows = await em.execute<ProviderKeyRow[]>(`select ${COLUMNS} from provider_key where id = ?`, [id]);
  return providerKeyView(rows[0]!);
}

export async function updateProviderKey(
  work: Work,
  box: SecretBox,
  input: { providerKeyId: string; key?: string; name?: string; status?: 'active' | 'disabled'; baseUrl?: string; options?: Record<string, unknown>; weight?: number },
) {
  const { em } = work;
  const rows = await em.execute<ProviderKeyRow[]>(`select ${COLUMNS} from provider_key where id = ? for update`, [input.providerKeyId]);
  const current = rows[0];
  if (!current) throw notFound('provider key');
  const name = input.name ?? current.name;
  const baseUrl = input.baseUrl ?? current.base_url;
  checkNameAndUrl(current.provider, name, baseUrl);
  let options = input.options !== undefined ? parseOptions(current.provider, input.options) : current.options;
  let last4 = current.last4;
  let sealed: string | null = null;
  if (input.key !== undefined) {
    const checked = checkKey(current.provider, input.key, options);
    options = checked.options;
    last4 = checked.last4;
    sealed = box.seal(input.key);
  }
  if (name.toLowerCase() !== current.name.toLowerCase()) {
    await em.execute('select id from organization where id = ? for update', [current.org_id]);
    if (await nameTaken(em, current.org_id, name, current.id)) throw conflict(`a provider key named "${name}" already exists in this organization`);
  }
  const status = input.status ?? current.status;
  const weight = input.weight === undefined ? current.weight : checkWeight(input.weight);
  await em.execute(
    `update provider_key set name = ?, base_url = ?, options = ?::jsonb, status = ?, last4 = ?, weight = ?, sealed_key = coalesce(?, sealed_key), updated_at = now() where id = ?`,
    [name, baseUrl, JSON.stringify(options), status, last4, weight, sealed, current.id],
  );
  await notifyInvalidation(work, { kind: 'providerKeys', orgId: current.org_id });
  const before = { name: current.name, status: current.status, baseUrl: current.base_url, last4: current.last4, weight: current.weight };
  const after = { name, status, baseUrl, last4, weight, ...(sealed ? { rotated: true } : {}) };
  work.audit(current.org_id, sealed ? 'providerKey.rotated' : 'providerKey.updated', { type: 'provider_key', id: current.id }, before, after);
  work.emit(current.org_id, { type: 'providerKey.changed', providerKeyId: current.id, change: 'updated' });
  const updated = await em.execute<ProviderKeyRow[]>(`select ${COLUMNS} from provider_key where id = ?`, [current.id]);
  return providerKeyView(updated[0]!);
}

export async function deleteProviderKey(work: Work, providerKeyId: string) {
  const { em } = work;
  const rows = await em.execute<ProviderKeyRow[]>(`delete from provider_key where id = ? returning ${COLUMNS}`, [providerKeyId]);
  const gone = rows[0];
  if (!gone) throw notFound('provider key');
  await notifyInvalidation(work, { kind: 'providerKeys', orgId: gone.org_id });
  work.audit(gone.org_id, 'providerKey.deleted', { type: 'provider_key', id: gone.id }, { provider: gone.provider, name: gone.name, last4: gone.last4 }, null);
  work.emit(gone.org_id, { type: 'providerKey.changed', providerKeyId: gone.id, change: 'deleted' });
  return { ok: true as const };
}
