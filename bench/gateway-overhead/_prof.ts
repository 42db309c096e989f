import autocannon from 'autocannon';
import { startDatabase } from '../live-fanout/setup.js';
import { startTsChild } from './processes.js';
const db = await startDatabase();
if (process.env.PGSET) { const pg = (await import('pg')).default; const c = new pg.Client({ connectionString: db.url }); await c.connect(); for (const kv of process.env.PGSET.split(',')) await c.query(`alter system set ${kv}`); await c.query('select pg_reload_conf()'); await c.end(); }
const up = await startTsChild('upstream-server.ts', {}, 'up');
const gw = await startTsChild('gateway-server.ts', { DATABASE_URL: db.url, UPSTREAM_URL: up.url, GW_EXPERIMENT: '1' }, 'gw');
const messages = [{ role: 'user', content: 'Say hello to the benchmark [chunks:20]' }];
import { readFileSync, readdirSync } from 'node:fs';
function cpuOf(match: (cmd: string) => boolean): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!match(cmd)) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return ticks * 10; // ms (100 Hz)
}
const pgCpu = () => cpuOf((c) => c.startsWith('postgres'));
const gwCpu = () => cpuOf((c) => c.includes('gateway-server.ts'));
const upCpu = () => cpuOf((c) => c.includes('upstream-server.ts'));
async function run(url: string, auth: string, model: string, conns: number, secs: number, path = '/v1/chat/completions') {
  const lat: number[] = [];
  const inst = autocannon({ url: `${url}${path}`, method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ model, messages }), connections: conns, duration: secs });
  (inst as any).on('response', (_c: unknown, s: number, _b: number, ms: number) => { if (s === 200) lat.push(ms); });
  const c0 = [pgCpu(), gwCpu(), upCpu()];
  const r = await inst;
  const c1 = [pgCpu(), gwCpu(), upCpu()];
  const n = lat.length || 1;
  process.stdout.write(`  cpu ms/req: pg ${((c1[0]! - c0[0]!) / n).toFixed(3)} gw ${((c1[1]! - c0[1]!) / n).toFixed(3)} up ${((c1[2]! - c0[2]!) / n).toFixed(3)}\n`);
  lat.sort((a, b) => a - b);
  return { p50: +lat[Math.floor(lat.length * 0.5)]!.toFixed(3), p99: +lat[Math.floor(lat.length * 0.99)]!.toFixed(3), rps: r.requests.average, n: lat.length };
}
const secs = Number(process.env.SECS ?? 5);
for (let i = 0; i < Number(process.env.ROUNDS ?? 2); i++) {
  console.log('direct ', JSON.stringify(await run(up.url, 'Bearer sk', 'gpt-4o-mini', 1, secs)));
  if (!process.env.ONLY_PROXY) console.log('gateway', JSON.stringify(await run(gw.url, `Bearer ${gw.fields[0]}`, 'openai/gpt-4o-mini', 1, secs)));
}
if (process.env.CONNS) console.log('gateway x' + process.env.CONNS, JSON.stringify(await run(gw.url, `Bearer ${gw.fields[0]}`, 'openai/gpt-4o-mini', Number(process.env.CONNS), secs)));
await gw.stop(); await up.stop(); await db.stop();
