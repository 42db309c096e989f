/**
 * The process's logger as `npm start` runs it (and the benches, which must pay what users pay):
 * pino at LOG_LEVEL, written asynchronously (pino's default destination writes synchronously, one
 * write(2) per line on the request path). Lines written in the same tick go out in one write.
 * `flush()` before exiting so the last lines are not lost.
 */
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
