/**
 * The top self-time items of a V8 CPU profile (`node --cpu-prof`), e.g. our gateway's under the
 * overhead bench:
 *
 *   GATEWAY_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' LOAD=light PORTKEY=0 ENDPOINTS=0 npm run bench:gateway-overhead
 *   npx tsx bench/gateway-overhead/profile-top.ts /tmp/prof/<file>.cpuprofile [N=25] [SKIP_SECONDS=0]
 *
 * SKIP_SECONDS leaves out the profile's first seconds (start-up, module loading, the warm-up);
 * the busy share of each 5-second slice is printed first, to choose it.
 *
 * Self time per function (name, file:line), summed over the profile's nodes, as a share of all
 * samples (idle included, and the share of the busy time next to it); then the same summed per
 * package/file, which shows where the time goes by library.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, n = '25', skip = '0'] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-top.ts <file.cpuprofile> [N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
const idleId = profile.nodes.find((node) => node.callFrame.functionName === '(idle)')?.id;
const slices: { busy: number; all: number }[] = [];
let at = 0;
profile.samples.forEach((id, i) => {
  // The first delta runs from the profiler's start to its first sample (seconds, with the inspector's own dispatch): not sampled work.
  const dt = i === 0 ? 0 : (profile.timeDeltas[i] ?? 0);
  at += dt;
  const slice = (slices[Math.floor(at / 5e6)] ??= { busy: 0, all: 0 });
  slice.all += dt;
  if (id !== idleId) slice.busy += dt;
  if (at >= Number(skip) * 1e6) selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
});
console.log(`busy share per 5 s: ${slices.map((s, i) => `${i * 5}s ${Math.round((100 * s.busy) / Math.max(1, s.all))}%`).join(', ')}`);
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/work\/main\//, '');
const idle = new Set(['(idle)', '(program)', '(garbage collector)']);
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
let idleUs = 0;
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === '(idle)') idleUs += us;
  const name = idle.has(functionName) || !url ? functionName || '(anonymous native)' : `${functionName || '(anonymous)'} ${short(url)}:${lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const where = !url ? (functionName.startsWith('(') ? functionName : 'native / builtins') : short(url).startsWith('node:') ? short(url) : short(url).split('/').slice(0, short(url).startsWith('@') ? 2 : 1).join('/');
  pkg.set(where, (pkg.get(where) ?? 0) + us);
}
const busy = total - idleUs;
const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${pct(idleUs, total)} idle; shares below: of all samples / of the busy time`);
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) if (name !== '(idle)') console.log(`${pct(us, total).padStart(6)} ${pct(us, busy).padStart(6)}  ${name}`);
};
show('self time by function', fn);
show('self time by package / file', pkg);
