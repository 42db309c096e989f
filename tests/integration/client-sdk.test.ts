/**
 * The client package and its examples against a real server: `examples/provision.ts` creates an
 * organization, project and key with a personal token; `examples/usage-monitor.ts` follows usage
 * and balance, and across a dropped socket and a stop/restart (state file) delivers every stored
 * event exactly once, in order, none missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { balanceOf, flushUsage, grantCredits, newOwner, openai, type Owner } from '../helpers/gateway.js';
import { eventually } from '../helpers/live.js';
import { createGatewayClient } from '../../client-sdk/index.js';
import { provision } from '../../examples/provision.js';
import { readState, startUsageMonitor, type Monitor } from '../../examples/usage-monitor.js';
import type { LiveEvent } from '../../shared/events.js';
import { nanosToDecimal } from '../../shared/money.js';
import { runCommand } from '../../server/events/unit-of-work.js';

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;
let token: string;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: false });
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app, 'SDK Owner');
  ({ token } = await owner.client.auth.tokens.create.mutate({ name: 'sdk test' }));
});
afterAll(async () => {
  await app?.close();
  await upstream?.close();
});

async function storedEventIds(orgId: string): Promise<string[]> {
  const rows = await app.orm.em.fork().execute<{ id: string }[]>('select id from org_event where org_id = ? order by id', [orgId]);
  return rows.map((r) => String(r.id));
}

async function chat(key: string, n = 1) {
  for (let i = 0; i < n; i++) {
    const answer = await openai(app, key, { maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }] });
    expect(answer.choices[0]?.message.content).toBeTruthy();
  }
}

describe('client package', () => {
  it('is a typed tRPC client over HTTP with the token, and refuses a bad token', async () => {
    const client = createGatewayClient({ url: app.url, token, WebSocket, lazy: true });
    const bad = createGatewayClient({ url: app.url, token: 'not-a-token', WebSocket, lazy: true });
    try {
      const me = await client.auth.me.query();
      expect(me?.user.email).toBe(owner.email);
      await expect(bad.organization.list.query()).rejects.toMatchObject({ data: { code: 'UNAUTHORIZED' } });
    } finally {
      await client.close();
      await bad.close();
    }
  });

  it('examples/provision.ts creates an organization, project and a working API key', async () => {
    const result = await provision({ url: app.url, token, organization: 'Provisioned Co', project: 'Backend' });
    const projects = await owner.client.project.list.query({ orgId: result.orgId });
    expect(projects.map((p) => p.name).sort()).toEqual(['Backend', 'Default Project']);
    const keys = await owner.client.apiKey.list.query({ projectId: result.projectId });
    expect(keys.map((k) => k.id)).toContain(result.apiKeyId);
    await grantCredits(app, result.orgId, '5');
    await chat(result.key);
  });

  it('examples/usage-monitor.ts sees usage and balance, and every stored event exactly once across a dropped socket and a restart', async () => {
    const { orgId, key } = await provision({ url: app.url, token, organization: 'Monitored Co', project: 'Traffic' });
    await grantCredits(app, orgId, '10');
    const before = (await storedEventIds(orgId)).at(-1)!;
    const stateFile = join(mkdtempSync(join(tmpdir(), 'usage-monitor-')), 'state.json');
    const seen: { run: number; event: LiveEvent; id: string | undefined }[] = [];
    const lines: string[] = [];
    const start = (run: number): Monitor =>
      startUsageMonitor({
        url: app.url,
        token,
        stateFile,
        print: (line) => lines.push(line),
        onEvent: (o, event, id) => void (o === orgId && seen.push({ run, event, id })),
        retryDelayMs: () => 50,
      });
    const tracked = () => seen.filter((s) => s.id !== undefined).map((s) => s.id!);

    // Run 1: usage while it is listening.
    let monitor = start(1);
    await monitor.ready;
    await chat(key, 2);
    await flushUsage(app);
    await eventually(() => seen.some((s) => s.event.type === 'usage' && s.event.requests >= 1), 5_000, 'a usage event');
    await eventually(async () => tracked().at(-1) === (await storedEventIds(orgId)).at(-1), 5_000, 'the credits.changed after usage');
    expect(seen.some((s) => s.event.type === 'credits.changed')).toBe(true);

    // The last thing the socket carries before it drops is an event without an id (wsLink alone
    // would then resume from "now"). The server drops the socket; events committed meanwhile
    // arrive after the reconnect.
    const marker = seen.length;
    await runCommand(app.services, null, async (work) => work.emit(orgId, { type: 'usage', requests: 0, cost: '0' }, { store: false }));
    await eventually(() => seen.slice(marker).some((s) => s.event.type === 'usage' && s.event.requests === 0), 5_000, 'the ephemeral event');
    const opens = monitor.opens();
    for (const socket of app.app.websocketServer.clients) socket.terminate();
    await chat(key);
    await flushUsage(app);
    await grantCredits(app, orgId, '1');
    await eventually(async () => tracked().at(-1) === (await storedEventIds(orgId)).at(-1), 8_000, 'the events after the drop');
    expect(monitor.opens()).toBeGreaterThan(opens);

    // Stopped: events happen while it is down.
    await monitor.stop();
    expect(readState(stateFile).lastEventIds[orgId]).toBe(tracked().at(-1));
    await chat(key);
    await flushUsage(app);
    await grantCredits(app, orgId, '2');
    await chat(key);
    await flushUsage(app);
    const missedFrom = seen.length;

    // Run 2 resumes from the state file.
    monitor = start(2);
    await monitor.ready;
    await eventually(async () => tracked().at(-1) === (await storedEventIds(orgId)).at(-1), 5_000, 'the missed events');
    await monitor.stop();

    const ids = tracked();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual((await storedEventIds(orgId)).filter((id) => BigInt(id) > BigInt(before)));
    const missed = seen.slice(missedFrom).filter((s) => s.id !== undefined);
    expect(missed.every((s) => s.run === 2 && s.event.type === 'credits.changed')).toBe(true);
    expect(missed.length).toBe(3);
    const balance = nanosToDecimal(await balanceOf(app, orgId));
    expect(lines.filter((l) => l.startsWith('Monitored Co: balance')).at(-1)).toBe(`Monitored Co: balance $${balance}`);
    expect(lines.some((l) => /^Monitored Co: \d+ request\(s\), \$/.test(l))).toBe(true);
    expect(lines.filter((l) => l.includes('ended'))).toEqual([]);
  });
});
