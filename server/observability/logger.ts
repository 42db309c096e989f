/**
 * The process's logger as `npm start` runs it (and the benches, which must pay what users pay):
 * pino at LOG_LEVEL, written asynchronously (pino's default destination writes synchronously, one
 * write(2) per line on the request path). Lines written in the same tick go out in one write.
 * `flush()` before exiting so the last lines are not lost.
 */
import { randomUUID } from 'node:crypto';
import pino from 'pino';

export interface ProcessLogger {
  /** Fastify's `logger` option. */
  options: { level: string; stream: pino.DestinationStream };
  /** Writes out whatever is buffered; resolves once it is written (or at once if nothing is). */
  flush(): Promise<void>;
}

/** `dest`: a file descriptor (1 = stdout, the default) or a file path. */
export function createProcessLogger(level: string, dest: number | string = 1): ProcessLogger {
  const stream = pino.destination({ dest, sync: false });
  return {
    options: { level, stream },
    flush: () =>
      new Promise<void>((resolve) => {
        try {
          stream.flush((err) => {
            if (err) process.stderr.write(`log flush failed: ${err.message}\n`);
            resolve();
          });
        } catch (err) {
          // Not open yet or already closed: nothing of ours is buffered there to lose.
          process.stderr.write(`log flush failed: ${(err as Error).message}\n`);
          resolve();
        }
      }),
  };
}

/** The path of a request URL without its query string (which may carry secrets). */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Paths logged at debug when they succeed: probes and scrapes, every few seconds. */
export const QUIET_PATHS: ReadonlySet<string> = new Set(['/healthz', '/metrics']);

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** Fastify's genReqId: the caller's (or its proxy's) X-Request-Id when it is a plain token, else a new UUID. */
export function requestIdOf(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}
