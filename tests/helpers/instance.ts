/** Starts another server instance as a real child process on an existing database. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ChildInstance {
  url: string;
  pid: number;
  /** Resolves with the exit code (or signal) when the process ends, for whatever reason. */
  exited: Promise<number | string | null>;
  /** Everything the process wrote to stderr so far (crash reports). */
  stderr(): string;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL('./instance-main.ts', import.meta.url));

/**
 * `config` adds settings to the child's configuration (e.g. the fake upstream's URLs); `jobs` runs
 * the pg-boss workers in it too, as `npm start` does.
 */
export async function startChildInstance(databaseUrl: string, timeoutMs = 30_000, config: Record<string, string> = {}, opts: { jobs?: boolean } = {}): Promise<ChildInstance> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DATABASE_URL: databaseUrl, INSTANCE_CONFIG: JSON.stringify(config), INSTANCE_JOBS: opts.jobs ? '1' : '' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`child instance did not start within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${stderr}`));
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => fail(new Error(`child instance exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    exited,
    stderr: () => stderr,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
