/**
 * The floor: a bare Node proxy that forwards each request to the fake upstream through an undici
 * pool and sends the answer back, doing nothing else (no auth, routing, metering, logging). What it
 * adds over calling the upstream directly is what any Node HTTP proxy costs on this machine: the
 * HTTP server, the client, two more loopback hops and two more wake-ups per call. A streamed answer
 * (text/event-stream) is written on chunk by chunk; any other is read whole and sent with its length.
 * Prints `READY <url>`.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.env.UPSTREAM_URL!;
const pool = new Pool(upstream, { connections: 64, pipelining: 1 });
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    pool
      .request({ path: req.url!, method: 'POST', headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body: Buffer.concat(chunks) })
      .then(async (up) => {
        if (String(up.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          // A stream goes through chunk by chunk, as it arrives.
          res.writeHead(up.statusCode, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          for await (const chunk of up.body) res.write(chunk as Buffer);
          res.end();
          return;
        }
        const body = Buffer.from(await up.body.arrayBuffer());
        res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      })
      .catch((err: Error) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: err.message } }));
      });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`READY http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
