/** Projects inside an organization. */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { projectLimit, projectLimitReason } from '../../../shared/plans.js';
import type { Work } from '../../events/unit-of-work.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { badRequest, forbidden, notFound, precondition } from '../../errors.js';
import { Organization } from '../organizations/entities.js';
import { Project, type ProjectEntity } from './entities.js';
import { ProviderKey } from '../providerKeys/entities.js';
import { routeModel } from '../../../shared/models.js';
import type { ProjectRoutingInput } from '../../../shared/schemas.js';

export function projectView(p: ProjectEntity) {
  return {
    id: p.id,
    name: p.name,
    isDefault: p.isDefault,
    mode: p.mode,
    cachingEnabled: p.cachingEnabled,
    cacheTtlSeconds: p.cacheTtlSeconds,
    allowedOrigins: p.allowedOrigins,
    /** As set; left-out fields mean the defaults (strategy balanced, 3 attempts, no fallbacks). */
    routing: p.routing ?? {},
    createdAt: p.createdAt,
  };
}

export async function listProjects(em: EntityManager, orgId: string) {
  const projects = await em.find(Project, { orgId }, { orderBy: { isDefault: 'desc', createdAt: 'asc' } });
  return projects.map(projectView);
}

export async function createProject(work: Work, orgId: string, name: string) {
  const { em } = work;
  // The organization row lock makes the count-then-insert safe under parallel requests.
  const org = await em.findOne(Organization, { id: orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!org) throw notFound('organization');
  if (projectLimit(org.plan, org.projectLimit) !== null) {
    const refused = projectLimitReason(org.plan, org.projectLimit, await em.count(Project, { orgId }));
    if (refused) throw forbidden(refused);
  }
  const project = em.create(Project, {
    id: randomUUID(),
    orgId,
    name,
    isDefault: false,
    mode: 'hybrid',
    cachingEnabled: false,
    cacheTtlSeconds: 300,
    allowedOrigins: [],
    routing: {},
    createdAt: new Date(),
  });
  await em.flush();
  work.audit(orgId, 'project.created', { type: 'project', id: project.id }, null, { name });
  work.emit(orgId, { type: 'project.created', projectId: project.id, name });
  return projectView(project);
}

type ProjectPatch = { name?: string; mode?: ProjectEntity['mode']; cachingEnabled?: boolean; cacheTtlSeconds?: number; allowedOrigins?: string[]; routing?: ProjectRoutingInput };

export async function updateProject(work: Work, projectId: string, input: Omit<ProjectPatch, 'routing'> & { routing?: ProjectRoutingInput }) {
  const { em } = work;
  const project = await em.findOne(Project, { id: projectId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!project) throw notFound('project');
  const { routing, ...rest } = input;
  const patch: ProjectPatch = rest;
  if (routing) patch.routing = await mergedRouting(em, project.orgId, project.routing ?? {}, routing);
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const key of Object.keys(patch) as (keyof ProjectPatch)[]) {
    const value = patch[key];
    if (value === undefined || project[key] === value || (typeof value === 'object' && JSON.stringify(project[key]) === JSON.stringify(value))) continue;
    before[key] = project[key];
    after[key] = value;
    (project as Record<string, unknown>)[key] = value;
  }
  if (Object.keys(after).length > 0) {
    await em.flush();
    // The gateway's next call must see the new mode and caching on every instance (a rename is only shown).
    if (Object.keys(after).some((k) => k !== 'name')) await notifyInvalidation(work, { kind: 'project', projectId: project.id });
    work.audit(project.orgId, 'project.updated', { type: 'project', id: project.id }, before, after);
    work.emit(project.orgId, { type: 'project.updated', projectId: project.id, name: project.name });
  }
  return projectView(project);
}

export async function deleteProject(work: Work, projectId: string) {
  const { em } = work;
  const found = await em.findOne(Project, { id: projectId });
  if (!found) throw notFound('project');
  // Lock the organization so two deletes cannot remove the last two projects at once. It is also
  // the first lock, before the cascade to the project's API keys: the usage meter locks the
  // organization first too (then the keys' last use, then the balance), so a delete right after
  // traffic waits for the batch (or the batch for it) instead of deadlocking.
  await em.findOne(Organization, { id: found.orgId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  const remaining = await em.count(Project, { orgId: found.orgId });
  if (remaining <= 1) throw precondition('an organization needs at least one project; create another before deleting this one');
  em.remove(found);
  await em.flush();
  await notifyInvalidation(work, { kind: 'project', projectId: found.id });
  work.audit(found.orgId, 'project.deleted', { type: 'project', id: found.id }, { name: found.name }, null);
  work.emit(found.orgId, { type: 'project.deleted', projectId: found.id });
  return { ok: true as const };
}

/**
 * The stored routing with `change` applied: fields left out keep their value, `fallbacks` replaces
 * the whole map. Every model named must route the way the gateway routes it (shared/models.ts
 * routeModel): a catalog model (`provider/model`, a bare catalog name or alias) or a model of one
 * of the organization's custom providers (`<custom name>/<model>`).
 */
async function mergedRouting(em: EntityManager, orgId: string, stored: ProjectRoutingInput, change: ProjectRoutingInput): Promise<ProjectRoutingInput> {
  const next: ProjectRoutingInput = { ...stored };
  if (change.strategy !== undefined) next.strategy = change.strategy;
  if (change.maxAttempts !== undefined) next.maxAttempts = change.maxAttempts;
  if (change.fallbacks !== undefined) {
    const customs = (await em.find(ProviderKey, { orgId, provider: 'custom' }, { fields: ['name'] })).map((k) => k.name.toLowerCase());
    const isCustom = (name: string) => customs.includes(name.toLowerCase());
    const unknown = (model: string) => {
      const route = routeModel(model, isCustom);
      return !route || (route.kind === 'catalog' && !route.entry);
    };
    const fallbacks: Record<string, string[]> = {};
    for (const [model, chain] of Object.entries(change.fallbacks)) {
      if (unknown(model)) throw badRequest(`fallbacks: model "${model}" is not in the catalog nor a model of one of this organization's custom providers; use provider/model (e.g. openai/gpt-4o-mini)`);
      const seen = new Set<string>([model]);
      for (const fallback of chain) {
        if (unknown(fallback)) throw badRequest(`fallbacks for "${model}": model "${fallback}" is not in the catalog nor a model of one of this organization's custom providers; use provider/model`);
        if (seen.has(fallback)) throw badRequest(`fallbacks for "${model}": "${fallback}" is named twice (or is the model itself)`);
        seen.add(fallback);
      }
      fallbacks[model] = chain;
    }
    next.fallbacks = fallbacks;
  }
  return next;
}
