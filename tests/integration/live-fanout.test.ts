/**
 * One event, many subscribers of its organization (the fan-out bench/live-fanout measures):
 * every subscriber gets the same payload under its own subscription, a subscription that is not
 * its socket's first still gets its events, and removing one member ends that member's stream at
 * once while the others keep receiving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { addMember, liveConnection, type LiveConnection, type LiveSubscription } from '../helpers/live.js';

let app: TestApp;
let owner: Awaited<ReturnType<typeof signUp>>;
let members: Awaited<ReturnType<typeof signUp>>[];
let orgId: string;
const connections: LiveConnection[] = [];

function connect(who: { cookieHeader(): string }) {
  const c = liveConnection(app.url, { cookie: who.cookieHeader() });
  connections.push(c);
  return c;
}

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app.url, 'Fan Owner');
  ({ organization: { id: orgId } } = await owner.client.organization.create.mutate({ name: 'Fan-out Co' }));
  members = [];
  for (const name of ['Fan One', 'Fan Two', 'Fan Three']) members.push(await addMember(app.url, owner, orgId, name));
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await app?.close();
});

describe('live fan-out to many subscribers of one organization', () => {
  it('gives every subscriber the same payload, each under its own subscription', async () => {
    const subs: LiveSubscription[] = [];
    for (const m of members) subs.push(connect(m).subscribe(orgId));
    // One socket whose subscription is its second (a different subscription id on the wire).
    const second = connect(owner);
    const first = second.subscribe(orgId);
    await first.event('presence');
    first.unsubscribe();
    subs.push(second.subscribe(orgId));
    await Promise.all(subs.map((s) => s.event('presence')));

    const names = ['Fan A', 'Fan B', 'Fan C'];
    const projects: { id: string }[] = [];
    for (const name of names) projects.push(await owner.client.project.create.mutate({ orgId, name }));
    const got = await Promise.all(
      subs.map(async (s) => {
        for (const p of projects) await s.event('project.created', (e) => e.projectId === p.id);
        return s.tracked().filter((r) => r.event.type === 'project.created' && projects.some((p) => p.id === (r.event as { projectId: string }).projectId));
      }),
    );
    const reference = got[0]!;
    expect(reference.map((r) => (r.event as { name: string }).name)).toEqual(names);
    for (const other of got.slice(1)) expect(JSON.stringify(other)).toBe(JSON.stringify(reference));
    for (const s of subs) s.unsubscribe();
  });

  it("ends a removed member's stream at once; the others go on receiving", async () => {
    const [stays, leaves] = [members[0]!, members[1]!];
    const staying = connect(stays).subscribe(orgId);
    const leaving = connect(leaves).subscribe(orgId);
    await Promise.all([staying.event('presence'), leaving.event('presence')]);

    await owner.client.team.removeMember.mutate({ orgId, userId: leaves.user.id });
    const removed = await leaving.event('member.removed', (e) => e.userId === leaves.user.id);
    await leaving.complete();
    await staying.event('member.removed', (e) => e.userId === leaves.user.id);

    const after = await owner.client.project.create.mutate({ orgId, name: 'After removal' });
    await staying.event('project.created', (e) => e.projectId === after.id);
    // Nothing after its own removal reached the removed member.
    expect(leaving.received.at(-1)?.id).toBe(removed.id);
    expect(leaving.received.some((r) => r.event.type === 'project.created' && r.event.projectId === after.id)).toBe(false);
    staying.unsubscribe();
  });
});
