/**
 * A failure caught on an after-commit, event or money path is never silent: it is logged with what
 * failed and counted in /metrics (gateway_caught_failures_total), which asks for METRICS_TOKEN when set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { runCommand } from '../../server/events/unit-of-work.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { METRICS_TOKEN: 'metrics-secret' } });
});
afterAll(async () => {
  await app?.close();
});

async function scrape(token?: string) {
  return fetch(`${app.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

function counterValue(text: string, what: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`gateway_caught_failures_total{what="${what}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('caught failures', () => {
  it('an after-commit hook that throws is logged and counted; the command still answers', async () => {
    const error = vi.spyOn(app.services.log, 'error');
    const before = counterValue(await (await scrape('metrics-secret')).text(), 'after-commit hook');
    const value = await runCommand(app.services, null, async (work) => {
      work.afterCommit(() => {
        throw new Error('hook exploded');
      });
      return 42;
    });
    expect(value).toBe(42);
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ err: expect.objectContaining({ message: 'hook exploded' }) }), 'after-commit hook failed');
    const after = counterValue(await (await scrape('metrics-secret')).text(), 'after-commit hook');
    expect(after).toBe(before + 1);
    error.mockRestore();
  });

  it('/metrics asks for the token when METRICS_TOKEN is set', async () => {
    expect((await scrape()).status).toBe(401);
    expect((await scrape('wrong')).status).toBe(401);
    const ok = await scrape('metrics-secret');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
  });
});
