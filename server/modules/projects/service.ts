/** Projects inside an organization. */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { PLANS, projectLimit } from '../../../shared/plans.js';
import type { Work } from '../../events/unit-of-work.js';
import { notifyInvalidation } from '../gateway/invalidation.js';
import { forbidden, notFound, precondition } from '../../errors.js';
import { Organization } from '../organizations/entities.js';
import { Project, type ProjectEntity } from './entities.js';

export function projectView(p: ProjectEntity) {
  return {
    id: p.id,
    name: p.name,
    isDefault: p.isDefault,
    mode: p.mode,
    cachingEnabled: p.cachingEnabled,
    cacheTtlSeconds: p.cacheTtlSeconds,
    allowedOrigins: p.allowedOrigins,
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
  const limit = projectLimit(org.plan, org.projectLimit);
  if (limit !== null && (await em.count(Project, { orgId })) >= limit) {
    throw forbidden(`the ${PLANS[org.plan].name} plan allows ${limit} projects per organization; delete a project, upgrade, or contact support to raise the limit`);
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
    createdAt: new Date(),
  });
  await em.flush();
  work.audit(orgId, 'project.created', { type: 'project', id: project.id }, null, { name });
  work.emit(orgId, { type: 'project.created', projectId: project.id, name });
  return projectView(project);
}

type ProjectPatch = { name?: string; mode?: ProjectEntity['mode']; cachingEnabled?: boolean; cacheTtlSeconds?: number; allowedOrigins?: string[] };

export async function updateProject(work: Work, projectId: string, patch: ProjectPatch) {
  const { em } = work;
  const project = await em.findOne(Project, { id: projectId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!project) throw notFound('project');
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const key of Object.keys(patch) as (keyof ProjectPatch)[]) {
    const value = patch[key];
    if (value === undefined || project[key] === value || (Array.isArray(value) && JSON.stringify(project[key]) === JSON.stringify(value))) continue;
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
