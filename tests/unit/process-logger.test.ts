/**
 * The process logger (server/observability/logger.ts) as `npm start` uses it: request lines are
 * buffered and written several kilobytes at a time (not one fs.write per line), whatever is
 * buffered still comes out on its own within a second, and flush() writes everything, in order,
 * also where fsync fails (/dev/null, pipes).
 */
import { execFile } from 'node:child_process';
import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProcessLogger, LOG_BUFFER_BYTES } from '../../server/observability/logger.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempLog(): string {
  const dir = mkdtempSync(join(tmpdir(), 'process-logger-'));
  dirs.push(dir);
  return join(dir, 'out.log');
}

/** A pino logger on the process logger's destination, as Fastify builds it from `options`. */
const loggerOf = (logger: ReturnType<typeof createProcessLogger>) => pino({ level: logger.options.level }, logger.options.stream);

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A request line as app.ts writes it (about 200 bytes with pino's fields). */
const requestLine = (i: number) => ({ reqId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, method: 'POST', url: '/v1/chat/completions', status: 200, ms: 1.2 });

describe('the process logger', () => {
  it('writes request lines several kilobytes at a time, not one write per line, and flush() writes the rest in order', async () => {
    const file = tempLog();
    const logger = createProcessLogger('info', file);
    await logger.ready();
    const log = loggerOf(logger);
    const writes = vi.spyOn(fs, 'write');
    const lines = 300;
    // One line per turn of the event loop, as requests come: without a buffer each is its own write.
    for (let i = 0; i < lines; i++) {
      log.info(requestLine(i), 'request');
      await nextTick();
    }
    await logger.flush();
    const written = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reqId: string; msg: string });
    expect(written.map((l) => l.reqId)).toEqual(Array.from({ length: lines }, (_, i) => requestLine(i).reqId));
    const bytes = readFileSync(file).length;
    // At most one write per LOG_BUFFER_BYTES (plus the periodic flush, should it fire meanwhile).
    expect(writes.mock.calls.length).toBeLessThanOrEqual(Math.ceil(bytes / LOG_BUFFER_BYTES) + 2);
    expect(writes.mock.calls.length).toBeLessThan(lines / 10);
  });

  it('writes a lone line within a second without being asked', async () => {
    const file = tempLog();
    const logger = createProcessLogger('info', file);
    await logger.ready();
    loggerOf(logger).info({ reqId: 'lone' }, 'request');
    const deadline = Date.now() + 5_000;
    while (!readFileSync(file, 'utf8').includes('"reqId":"lone"')) {
      if (Date.now() > deadline) throw new Error('the buffered line was never written');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it('flushes to /dev/null (where fsync fails) without an error', async () => {
    const logger = createProcessLogger('info', '/dev/null');
    await logger.ready();
    const log = loggerOf(logger);
    const stderr = vi.spyOn(process.stderr, 'write');
    for (let i = 0; i < 100; i++) log.info(requestLine(i), 'request');
    await logger.flush();
    await logger.flush();
    expect(stderr.mock.calls.map((c) => String(c[0])).filter((t) => t.includes('log flush failed'))).toEqual([]);
  });

  it('hands the destination whole chunks of lines, not each line (no per-line copy of the buffer)', async () => {
    const file = tempLog();
    const logger = createProcessLogger('info', file);
    await logger.ready();
    // sonic-boom appends each written string to its buffer and measures the whole buffer every time.
    const destination = (logger.options.stream as unknown as { destination: { write(s: string): boolean } }).destination;
    const writes = vi.spyOn(destination, 'write');
    const log = loggerOf(logger);
    const lines = 400;
    for (let i = 0; i < lines; i++) log.info(requestLine(i), 'request');
    await logger.flush();
    const chunks = writes.mock.calls.map((c) => c[0]);
    expect(chunks.length).toBeLessThanOrEqual(Math.ceil(readFileSync(file).length / LOG_BUFFER_BYTES) + 1);
    for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
    expect(chunks.join('').trim().split('\n')).toHaveLength(lines);
  });

  it('writes what is still buffered when the process exits without flushing (a crash)', async () => {
    const file = tempLog();
    const code = `
      import pino from 'pino';
      import { createProcessLogger } from ${JSON.stringify(join(process.cwd(), 'server/observability/logger.ts'))};
      const logger = createProcessLogger('info', ${JSON.stringify(file)});
      await logger.ready();
      const log = pino({ level: 'info' }, logger.options.stream);
      for (let i = 0; i < 5; i++) log.info({ n: i }, 'before the crash');
      process.exit(3);`;
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: process.cwd() });
    await expect(run).rejects.toMatchObject({ code: 3 });
    const written = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n);
    expect(written).toEqual([0, 1, 2, 3, 4]);
  });
});
