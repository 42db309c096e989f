/**
 * The product as `npm start` runs it: the server bundled to JavaScript by the `build:server` script
 * (into a scratch folder of dist/, so packages resolve as they do from dist/server), started with
 * `node`, its default logger on stdout. It serves /healthz and a gateway call against a fake
 * upstream (migrations and the dynamically imported test-payment provider come from the bundle), and
 * writes exactly one log line per request (Fastify's two request lines are off).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { gatewaySetup, newOwner } from '../helpers/gateway.js';
import { startNodeFlags } from '../helpers/start-command.js';

const root = resolve(import.meta.dirname, '../..');
const outDir = mkdtempSync(join(root, 'dist', 'server-test-'));

let upstream: FakeUpstream;
let setupApp: TestApp;
let child: ChildProcess;
let out = '';
let url = '';

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The JSON lines the child wrote so far (anything else on stdout fails the parse, and the test). */
const lines = (): Record<string, unknown>[] =>
  out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) waiting for ${what}\n${out}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  // The build:server script itself, with only its output file moved.
  const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['build:server']!;
  const [bin, ...args] = script.split(/\s+/);
  expect(bin).toBe('esbuild');
  await promisify(execFile)(join(root, 'node_modules/.bin/esbuild'), [...args.filter((a) => !a.startsWith('--outfile=')), `--outfile=${join(outDir, 'main.js')}`], { cwd: root });

  upstream = await startFakeUpstream();
  // Sign-up, credits and the key through an in-process instance on the same database, so the
  // child sees only the requests below.
  setupApp = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  await startBuilt('1');
  await until('the ready line', () => out.includes('LLM Gateway ready'), 60_000);
}, 120_000);

/** `node <bundle>` as `npm start` runs it, on the setup instance's database; resets `out` and `url`. */
async function startBuilt(workers: string): Promise<void> {
  await stopChild();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  out = '';
  child = spawn(process.execPath, [...startNodeFlags(), join(outDir, 'main.js')], {
    cwd: root,
    env: {
      ...process.env,
      ...fakeUpstreamEnv(upstream.url),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      WORKERS: workers,
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_URL: url,
      DATABASE_URL: setupApp.databaseUrl,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-prod-start-')),
      APP_SECRET: 'test-secret-test-secret-test-secret-0123456789',
      GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
}

/** Kills a child a failed test left running. */
async function stopChild(): Promise<void> {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

afterAll(async () => {
  await stopChild();
  await setupApp?.close();
  await upstream?.close();
  rmSync(outDir, { recursive: true, force: true });
});

describe('the built server (npm start)', () => {
  it('serves /healthz and a gateway call, one log line per request, and stops cleanly', async () => {
    const owner = await newOwner(setupApp);
    const { key } = await gatewaySetup(setupApp, owner);

    const health = await fetch(`${url}/healthz`);
    expect(await health.json()).toEqual({ ok: true });
    const call = await fetch(`${url}/v1/chat/completions?trace=secret-in-query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] }),
    });
    expect(call.status).toBe(200);
    expect(((await call.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('w0 w1 w2 w3 w4 ');

    // SIGTERM drains and flushes the asynchronous log before the process exits.
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    // A successful health check is logged at debug only; the call's line carries its X-Request-Id.
    const withRequest = lines().filter((l) => l.reqId !== undefined);
    expect(withRequest.map((l) => [l.msg, l.method, l.url, l.status, l.reqId])).toEqual([['request', 'POST', '/v1/chat/completions', 200, call.headers.get('x-request-id')]]);
    expect(typeof withRequest[0]!.ms).toBe('number');
    expect(out).not.toContain('incoming request');
    expect(out).not.toContain('secret-in-query');
  });

  it('runs as a node:cluster primary with WORKERS=2 (the workers re-run the bundle, with the same node flags)', async () => {
    await startBuilt('2');
    await until('both workers', () => out.includes('worker 0 (pid') && out.includes('worker 1 (pid'), 90_000);
    const health = await fetch(`${url}/healthz`);
    expect(await health.json()).toEqual({ ok: true });
    // The workers run with npm start's node flags too (cluster passes the primary's on).
    const pids = [...out.matchAll(/worker \d \(pid (\d+)\)/g)].map((m) => m[1]!);
    expect(pids).toHaveLength(2);
    expect(startNodeFlags()).toContain('--max-semi-space-size=64');
    for (const pid of [String(child.pid), ...pids]) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of startNodeFlags()) expect(argv).toContain(flag);
    }
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);
});
