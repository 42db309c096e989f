/**
 * Child processes of the gateway benches, each on its own core budget: the fake upstream, our
 * gateway (the real buildApp, metering on) and Portkey's open-source gateway. Each prints
 * `READY <url> ...` on stdout once it listens.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startNodeFlags } from '../../tests/helpers/start-command.js';

export interface Child {
  url: string;
  fields: string[];
  pid: number;
  stop(): Promise<void>;
}

function waitReady(child: ChildProcess, what: string, pattern = /READY (\S+)([^\n]*)/): Promise<{ url: string; fields: string[] }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start\n${err}`)), 120_000);
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, fields: words(m[2]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}\n${err}`));
    });
  });
}

function stopper(child: ChildProcess) {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

const here = dirname(fileURLToPath(import.meta.url));

/** A space-separated setting (node flags, K=V pairs) as its words; unset is none. */
const words = (value: string | undefined) => (value ?? '').split(/\s+/).filter(Boolean);

const projectRoot = join(here, '../..');

/**
 * Bundles a bench script to JavaScript exactly as `npm run build:server` bundles the server (the
 * script's own flags, only the entry and output changed), into dist/bench/ (inside the project, so
 * packages resolve from node_modules as they do from dist/server).
 */
async function buildScript(script: string): Promise<string> {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [bin, entry, ...flags] = (pkg.scripts['build:server'] ?? '').split(/\s+/);
  if (bin !== 'esbuild' || entry !== 'server/main.ts') throw new Error(`build:server is not "esbuild server/main.ts ...": update bench/gateway-overhead/processes.ts`);
  const outfile = join(projectRoot, 'dist/bench', script.replace(/\.ts$/, '.js'));
  await promisify(execFile)(join(projectRoot, 'node_modules/.bin/esbuild'), [join(here, script), ...flags.filter((f) => !f.startsWith('--outfile=')), `--outfile=${outfile}`], { cwd: projectRoot });
  return outfile;
}

/** Builds `script` (a file of this folder) to JavaScript and runs it with node, as `npm start` runs the server. */
export async function startTsChild(script: string, env: Record<string, string>, what: string): Promise<Child> {
  // GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to our gateway's process only,
  // BARE_NODE_ARGS to the bare proxy's (to profile the floor the same way).
  const args = script === 'gateway-server.ts' ? process.env.GATEWAY_NODE_ARGS : script === 'bare-proxy-server.ts' ? process.env.BARE_NODE_ARGS : '';
  // Our gateway runs with npm start's node flags, as users run it.
  const extra = [...(script === 'gateway-server.ts' ? startNodeFlags() : []), ...words(args)];
  const built = await buildScript(script);
  const child = spawn(process.execPath, [...extra, built], { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // BENCH_CHILD_OUTPUT=<dir>: each child's stdout and stderr also go to <dir>/<script>.log (e.g. for --trace-gc).
  const outDir = process.env.BENCH_CHILD_OUTPUT;
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    const file = createWriteStream(join(outDir, script.replace(/\.ts$/, '.log')));
    child.stdout?.pipe(file);
    child.stderr?.pipe(file);
  }
  const { url, fields } = await waitReady(child, what);
  return { url, fields, pid: child.pid!, stop: stopper(child) };
}

/**
 * Runs an already built gateway-server.js (COMPARE_GATEWAY: another version of our gateway, built
 * from a git worktree, measured side by side with this one in the same run), with COMPARE_NODE_ARGS
 * as its node flags (npm start's when unset) and COMPARE_ENV as extra environment (the same build with other flags or settings:
 * COMPARE_GATEWAY=dist/bench-ab/gateway-server.js, a copy, since the run rebuilds dist/bench/).
 */
export async function startBuiltChild(file: string, env: Record<string, string>, what: string): Promise<Child> {
  const extra = process.env.COMPARE_NODE_ARGS !== undefined ? words(process.env.COMPARE_NODE_ARGS) : startNodeFlags();
  // COMPARE_ENV="K=V ...": environment of its own (e.g. GATEWAY_BATCH_WINDOW_MS=200).
  const own = Object.fromEntries(words(process.env.COMPARE_ENV).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const child = spawn(process.execPath, [...extra, file], { cwd: dirname(file), env: { ...process.env, ...env, ...own }, stdio: ['ignore', 'pipe', 'pipe'] });
  const { url, fields } = await waitReady(child, what);
  return { url, fields, pid: child.pid!, stop: stopper(child) };
}

export async function startPortkey(port: number): Promise<Child> {
  const require = createRequire(import.meta.url);
  const entry = join(dirname(require.resolve('@portkey-ai/gateway/package.json')), 'build/start-server.js');
  const fix = join(here, 'portkey-stream-fix.mjs'); // see that file: Portkey's streams fail on Node without it
  const child = spawn(process.execPath, ['--import', pathToFileURL(fix).href, entry, `--port=${port}`, '--headless'], { env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Portkey prints its own banner; poll the port instead of parsing it.
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('Portkey exited');
    try {
      await fetch(`${url}/`, { signal: AbortSignal.timeout(500) });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('Portkey did not start');
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return { url, fields: [], pid: child.pid!, stop: stopper(child) };
}
