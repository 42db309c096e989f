import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

describe('the server', () => {
  it('answers /healthz once migrated', async () => {
    const res = await fetch(`${app.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('signs up, creates an organization with its Default Project', async () => {
    const alice = await signUp(app.url, 'Alice');
    const me = await alice.client.auth.me.query();
    expect(me?.user.email).toBe(alice.email);
    const { organization, defaultProject } = await alice.client.organization.create.mutate({ name: 'Acme' });
    expect(defaultProject.name).toBe('Default Project');
    const list = await alice.client.organization.list.query();
    expect(list).toEqual([{ id: organization.id, name: 'Acme', role: 'owner', plan: 'free', credits: '0.00' }]);
    const projects = await alice.client.project.list.query({ orgId: organization.id });
    expect(projects.map((p) => p.name)).toEqual(['Default Project']);
  });
});
