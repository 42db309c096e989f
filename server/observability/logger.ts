/**
 * The process's logger as `npm start` runs it (and the benches, which must pay what users pay):
 * pino at LOG_LEVEL, written asynchronously and buffered. pino's default destination writes
 * synchronously, one write(2) per line on the request path; an asynchronous one without a buffer
 * still makes one fs.write (a thread-pool round trip) per line. Here lines collect in memory and go
 * out LOG_BUFFER_BYTES at a time (about 50 request lines per write), and whatever is buffered is
 * written at least every LOG_FLUSH_MS, so a quiet server's lines still appear within a second.
 * `flush()` before exiting so the last lines are not lost (and at process exit, whatever is still
 * buffered is written synchronously).
 *
 * The lines are held here, not in sonic-boom (pino's destination) with its `minLength`: sonic-boom
 * appends each line to one growing string and measures that string's UTF-8 length on every write,
 * which copies the whole buffer per line (about 4 KB of garbage per request line at 8 KiB; 8 % of
 * everything the gateway allocated per call, bench/README.md). sonic-boom still does the writing.
 */
import { randomUUID } from 'node:crypto';
import pino from 'pino';

/** Lines are held until this many bytes (UTF-16 units, near enough) are buffered. */
export const LOG_BUFFER_BYTES = 8 * 1024;
/** Buffered lines wait at most this long before they are written (an unref'd timer: it keeps no process alive). */
export const LOG_FLUSH_MS = 500;

export interface ProcessLogger {
  /** Fastify's `logger` option. */
  options: { level: string; stream: pino.DestinationStream };
  /** Resolves once the destination is open (a file path is opened asynchronously). */
  ready(): Promise<void>;
  /** Writes out whatever is buffered; resolves once it is written (or at once if nothing is). */
  flush(): Promise<void>;
}

type Destination = ReturnType<typeof pino.destination>;
/** sonic-boom's state that its types leave out: a write in flight, the descriptor (-1 while a path is being opened). */
type DestinationState = Destination & { _writing?: boolean; fd?: number; destroyed?: boolean };

/** Whole lines, handed to the destination LOG_BUFFER_BYTES at a time (one string per write, joined once). */
class LineBuffer implements pino.DestinationStream {
  private lines: string[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly destination: Destination) {}

  write(line: string): void {
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= LOG_BUFFER_BYTES) this.pass();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.pass(), LOG_FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Hands what is buffered to the destination (which writes it at once, or after the write in flight). */
  pass(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.lines.length === 0) return;
    const chunk = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.size = 0;
    const d = this.destination as DestinationState;
    if (!d.destroyed) this.destination.write(chunk);
  }
}

/** Every process logger's buffer, written synchronously when the process exits (a crash included). */
const buffers = new Set<LineBuffer>();
let exitHook = false;
function writeAllAtExit(): void {
  for (const b of buffers) {
    b.pass();
    const d = b.destination as DestinationState;
    try {
      if (!d.destroyed && (d.fd ?? -1) >= 0) d.flushSync();
    } catch {
      // Exiting: nothing more can be done with a destination that refuses.
    }
  }
}

/** `dest`: a file descriptor (1 = stdout, the default) or a file path. */
export function createProcessLogger(level: string, dest: number | string = 1): ProcessLogger {
  const destination = pino.destination({ dest, sync: false });
  const stream = new LineBuffer(destination);
  buffers.add(stream);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', writeAllAtExit);
  }
  return {
    options: { level, stream },
    ready: () =>
      new Promise<void>((resolve) => {
        if (((destination as DestinationState).fd ?? -1) >= 0) resolve();
        else destination.once('ready', () => resolve());
      }),
    flush: () => {
      stream.pass();
      return flushDestination(destination);
    },
  };
}

/**
 * Waits for the write in flight (if any) to finish, then writes the rest synchronously: in order,
 * and without sonic-boom's flush(cb), which fsyncs and fails on pipes and /dev/null (EINVAL);
 * flushSync ignores a descriptor that cannot be synced.
 */
function flushDestination(stream: Destination): Promise<void> {
  const s = stream as DestinationState;
  return new Promise<void>((resolve) => {
    let settled = false;
    const writeOut = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        if (!s.destroyed && (s.fd ?? -1) >= 0) stream.flushSync();
      } catch (err) {
        process.stderr.write(`log flush failed: ${(err as Error).message}\n`);
      }
      resolve();
    };
    const attempt = () => {
      if (settled) return;
      // Still opening its file, or a write in flight: its turn comes when that is done.
      if (!s.destroyed && (s.fd ?? -1) < 0) stream.once('ready', attempt);
      else if (!s.destroyed && s._writing) stream.once('drain', attempt);
      else writeOut();
    };
    // A write that never finishes (a stuck pipe) must not hold up the shutdown: whatever can be written, after a second.
    const timer = setTimeout(writeOut, 1000);
    timer.unref();
    attempt();
  });
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
