/**
 * Micro-benchmark of the gateway's upstream client (upstream/http.ts): 5,000 sequential calls to a
 * local node:http server through postJson (pool.request, the body read as a stream) and through
 * postJsonWhole (pool.dispatch, the body collected by a handler), four alternating rounds; prints the
 * process's CPU ms per round (client and the tiny server together, so differences are the client's).
 *
 *   npx tsx bench/gateway-overhead/upstream-client.ts
 */
import { createServer } from 'node:http';
import { UpstreamPools } from '../../server/modules/gateway/upstream/http.js';
const server = createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); }); });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as any).port}/x`;
const pools = new UpstreamPools();
async function run(kind: 'whole' | 'stream') {
  const c0 = process.cpuUsage();
  for (let i = 0; i < 5000; i++) { const r = await (kind === 'whole' ? pools.postJsonWhole(url, {}, '{}', 5000, 'F') : pools.postJson(url, {}, '{}', 5000, 'F')).response; await r.text(); }
  const c1 = process.cpuUsage(c0); return ((c1.user + c1.system) / 1000).toFixed(0);
}
for (let k = 0; k < 4; k++) console.log('stream', await run('stream'), 'whole', await run('whole'));
await pools.close(); server.close();
