/**
 * Coding agents pointed at the gateway run a prompt end to end, reaching nothing but the gateway.
 * Claude Code (`@anthropic-ai/claude-code`): ANTHROPIC_BASE_URL = the gateway, ANTHROPIC_AUTH_TOKEN
 * = a project key, telemetry, error reporting, the auto-updater and other nonessential traffic off,
 * HOME a fresh directory, and HTTP(S)_PROXY pointing at a local proxy that refuses and records every
 * connection: nothing may go through it. The gateway forwards to the fake Anthropic upstream, whose
 * answer Claude Code prints; the request log holds the calls. Runs when the package is installed.
 * The Codex CLI (`@openai/codex`): CODEX_HOME a fresh directory whose config.toml makes the gateway a
 * custom model provider (`wire_api = "responses"`, the key from GATEWAY_KEY), with update checks,
 * analytics, feedback, OpenTelemetry and the plugin catalog sync off, behind the same refusing proxy;
 * the gateway passes its Responses calls through to the fake OpenAI upstream (tests/helpers/fake-responses.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { fakeUrls } from '../helpers/fake-anthropic.js';
import '../helpers/fake-responses.js';
import { fakeUpstreamEnv, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { flushUsage, gatewaySetup, logsOf, newOwner, type Owner } from '../helpers/gateway.js';
import { sql } from '../helpers/db-state.js';

const CLAUDE = join(process.cwd(), 'node_modules/.bin/claude');
const CODEX = join(process.cwd(), 'node_modules/.bin/codex');

let upstream: FakeUpstream;
let app: TestApp;
let owner: Owner;
let proxy: net.Server;
let proxyPort = 0;
const proxied: string[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  app = await startTestApp({ env: fakeUpstreamEnv(upstream.url) });
  owner = await newOwner(app);
  // A proxy that takes nothing through: it notes the first line of each connection and closes it.
  proxy = net.createServer((socket) => {
    socket.once('data', (d: Buffer) => {
      proxied.push(d.toString('utf8').split('\r\n')[0]!);
      socket.destroy();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyPort = (proxy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  await app?.close();
  await upstream?.close();
});

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not finish within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.runIf(existsSync(CLAUDE))('Claude Code', () => {
  it('runs a prompt end to end through the gateway to the fake Anthropic upstream, contacting nothing else', { timeout: 50_000 }, async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const home = mkdtempSync(join(tmpdir(), 'claude-home-'));
    try {
      const proxyUrl = `http://127.0.0.1:${proxyPort}`;
      const result = await run(
        CLAUDE,
        ['-p', 'Say hello [chunks:3]'],
        {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          ANTHROPIC_BASE_URL: app.url,
          ANTHROPIC_AUTH_TOKEN: key,
          DISABLE_TELEMETRY: '1',
          DISABLE_ERROR_REPORTING: '1',
          DISABLE_AUTOUPDATER: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          HTTP_PROXY: proxyUrl,
          HTTPS_PROXY: proxyUrl,
          http_proxy: proxyUrl,
          https_proxy: proxyUrl,
          // Only the gateway (on this machine) is reached directly.
          NO_PROXY: '127.0.0.1',
          no_proxy: '127.0.0.1',
        },
        45_000,
      );
      expect(result.code, result.stderr).toBe(0);
      // The fake upstream's answer ([chunks:3]), printed by Claude Code.
      expect(result.stdout.trim()).toBe('w0 w1 w2');
      expect(proxied).toEqual([]);

      // What reached the upstream: Claude Code's streaming Messages calls with tools, system blocks and betas, through the gateway.
      const calls = upstream.requests.filter((r) => r.headers['x-api-key'] === 'sk-operator-anthropic');
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.every((r) => r.path === '/v1/messages' || r.path === '/v1/messages/count_tokens')).toBe(true);
      const main = calls.find((r) => JSON.stringify(r.body.messages).includes('Say hello [chunks:3]'))!;
      expect(main.body).toMatchObject({ stream: true });
      expect(Array.isArray(main.body.tools) && main.body.tools.length).toBeGreaterThan(0);
      expect(Array.isArray(main.body.system)).toBe(true);
      expect(String(main.headers['anthropic-beta'])).toContain('claude-code');
      expect(fakeUrls.some((u) => u === '/v1/messages?beta=true')).toBe(true);

      await flushUsage(app);
      const logs = await logsOf(app, orgId);
      const messagesCalls = calls.filter((r) => r.path === '/v1/messages').length;
      expect(logs).toHaveLength(messagesCalls);
      expect(logs.every((l) => l.status === 200 && l.provider === 'anthropic' && l.paid_by === 'credits' && BigInt(l.cost_nanos) > 0n)).toBe(true);
      const endpoints = await sql<{ endpoint: string }>(app, 'select distinct endpoint from request_log where org_id = ?', [orgId]);
      expect(endpoints).toEqual([{ endpoint: 'messages' }]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe.runIf(existsSync(CODEX))('Codex CLI', () => {
  it('runs a prompt end to end through the gateway (wire_api = "responses") to the fake OpenAI upstream, contacting nothing else', { timeout: 50_000 }, async () => {
    const { orgId, key } = await gatewaySetup(app, owner);
    const home = mkdtempSync(join(tmpdir(), 'codex-home-'));
    const work = mkdtempSync(join(tmpdir(), 'codex-work-'));
    proxied.length = 0;
    try {
      // The gateway as a custom model provider; update checks, analytics, feedback and OpenTelemetry off.
      writeFileSync(
        join(home, 'config.toml'),
        [
          'model = "gpt-5-mini"',
          'model_provider = "gateway"',
          'check_for_update_on_startup = false',
          'approval_policy = "never"',
          'sandbox_mode = "read-only"',
          '',
          '[model_providers.gateway]',
          'name = "LLM gateway"',
          `base_url = "${app.url}/v1"`,
          'env_key = "GATEWAY_KEY"',
          'wire_api = "responses"',
          '',
          '[analytics]',
          'enabled = false',
          '',
          '[feedback]',
          'enabled = false',
          '',
          '[otel]',
          'exporter = "none"',
          '',
          // Plugins sync a curated catalog from GitHub / chatgpt.com at startup: off.
          '[features]',
          'plugins = false',
          '',
        ].join('\n'),
      );
      const proxyUrl = `http://127.0.0.1:${proxyPort}`;
      const result = await run(
        CODEX,
        ['exec', '--strict-config', '--skip-git-repo-check', '--cd', work, 'Say hello [chunks:3]'],
        {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          CODEX_HOME: home,
          GATEWAY_KEY: key,
          HTTP_PROXY: proxyUrl,
          HTTPS_PROXY: proxyUrl,
          ALL_PROXY: proxyUrl,
          http_proxy: proxyUrl,
          https_proxy: proxyUrl,
          all_proxy: proxyUrl,
          NO_PROXY: '127.0.0.1',
          no_proxy: '127.0.0.1',
          RUST_LOG: 'error',
        },
        45_000,
      );
      expect(result.code, result.stderr).toBe(0);
      // The fake upstream's answer ([chunks:3]), printed by Codex as its last message.
      expect(result.stdout.trim().split('\n').at(-1)!.trim()).toBe('w0 w1 w2');
      expect(proxied).toEqual([]);

      const calls = upstream.requests.filter((r) => r.path === '/v1/responses' && JSON.stringify(r.body.input ?? '').includes('Say hello [chunks:3]'));
      expect(calls.length).toBeGreaterThan(0);
      expect(calls[0]!.headers.authorization).toBe('Bearer sk-operator-openai');
      expect(calls[0]!.body).toMatchObject({ model: 'gpt-5-mini', stream: true });
      expect(Array.isArray(calls[0]!.body.tools)).toBe(true);

      await flushUsage(app);
      const logs = await logsOf(app, orgId);
      expect(logs.length).toBeGreaterThan(0);
      expect(logs.every((l) => l.status === 200 && l.provider === 'openai' && l.model === 'gpt-5-mini' && l.streamed && BigInt(l.cost_nanos) > 0n)).toBe(true);
      const endpoints = await sql<{ endpoint: string }>(app, 'select distinct endpoint from request_log where org_id = ?', [orgId]);
      expect(endpoints).toEqual([{ endpoint: 'responses' }]);
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });
});
