/**
 * The fake upstream (tests/helpers/fake-upstream.ts, unchanged) in its own process, with each
 * request's own service time measured where it is spent, for the benches' per-call "added" figures.
 *
 * `http.createServer` is wrapped before the fake starts, so every request the fake serves is timed
 * from its arrival (Node's `request` event: headers parsed) to:
 * - `first`: the first byte of the answer handed to the socket (for a stream, the first chunk;
 *   headers and first chunk leave together);
 * - `end`: the answer's last byte handed to the socket (after `res.end` returns).
 * A request whose body carries `[bench:<id>]` (the bench puts a unique one in each call's prompt)
 * is logged under that id; `GET /__bench/timings` returns the log (`{id: [firstUs, endUs, arrivalMs,
 * writesUs?]}`: arrivalMs on CLOCK_MONOTONIC, which every process of the machine shares, so the
 * bench can time each streamed chunk from the fake's write to its own read) and clears it. The same time to the first byte also goes out as the response header
 * `x-upstream-service-us` (for a non-streamed answer: its whole service time, but for the socket
 * write), to see which proxies pass an upstream's headers through; the bench relies on the log.
 * Prints `READY <url>`.
 */
import http from 'node:http';
import { startFakeUpstream } from '../../tests/helpers/fake-upstream.js';

/** id -> [first byte us, last byte us, arrival (ms of CLOCK_MONOTONIC, as the bench reads it), each write's us when more than one]. */
const log = new Map<string, [number, number, number, number[]?]>();
const us = (from: bigint) => Number(process.hrtime.bigint() - from) / 1000;
const ID = /\[bench:(\d+)\]/;

function timed(listener: http.RequestListener): http.RequestListener {
  return (req, res) => {
    const arrival = process.hrtime.bigint();
    if (req.url === '/__bench/timings') {
      const body = JSON.stringify(Object.fromEntries(log));
      log.clear();
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    let id: string | null = null;
    let head = '';
    req.on('data', (c: Buffer) => {
      if (id !== null || head.length > 4096) return;
      head += c.toString('latin1');
      id = ID.exec(head)?.[1] ?? null;
    });
    // writeHead is deferred to the first write, so the header can carry the time of that write.
    let pending: [number, http.OutgoingHttpHeaders | undefined] | null = null;
    let first = -1;
    const writes: number[] = [];
    const realWriteHead = res.writeHead.bind(res) as (status: number, headers?: http.OutgoingHttpHeaders) => http.ServerResponse;
    const realWrite = res.write.bind(res) as (...a: unknown[]) => boolean;
    const realEnd = res.end.bind(res) as (...a: unknown[]) => http.ServerResponse;
    const flushHead = () => {
      if (first >= 0) return;
      first = us(arrival);
      if (pending) realWriteHead(pending[0], { ...pending[1], 'x-upstream-service-us': first.toFixed(1) });
      pending = null;
    };
    res.writeHead = ((status: number, headers?: http.OutgoingHttpHeaders) => {
      if (first >= 0) return realWriteHead(status, headers); // e.g. Node's implicit header at end()
      pending = [status, headers];
      return res;
    }) as typeof res.writeHead;
    res.write = ((...a: unknown[]) => {
      flushHead();
      writes.push(writes.length === 0 ? first : us(arrival));
      return realWrite(...a);
    }) as typeof res.write;
    res.end = ((...a: unknown[]) => {
      flushHead();
      const out = realEnd(...a);
      if (id !== null) log.set(id, writes.length > 1 ? [first, us(arrival), Number(arrival) / 1e6, writes] : [first, us(arrival), Number(arrival) / 1e6]);
      return out;
    }) as typeof res.end;
    listener(req, res);
  };
}

const createServer = http.createServer;
(http as { createServer: unknown }).createServer = (listener: http.RequestListener) => createServer(timed(listener));

const upstream = await startFakeUpstream({ record: false });
process.stdout.write(`READY ${upstream.url}\n`);
process.on('SIGTERM', () => void upstream.close().finally(() => process.exit(0)));
