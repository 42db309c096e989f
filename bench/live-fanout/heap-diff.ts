/**
 * Which objects an idle subscriber costs: compares two V8 heap snapshots (written by run.ts with
 * BENCH_HEAP_SNAPSHOTS=dir) by constructor name, and prints the largest growth per subscriber.
 *   npx tsx bench/live-fanout/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> <subscribers>
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function summarize(path: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
    const key = type === 'closure' ? `closure ${name}` : name;
    const entry = out.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += snap.nodes[i + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}

const [beforePath, afterPath, perArg] = process.argv.slice(2);
if (!beforePath || !afterPath) throw new Error('usage: heap-diff.ts <before> <after> [subscribers]');
const per = Number(perArg ?? 1);
const before = summarize(beforePath);
const after = summarize(afterPath);
const rows = [...after].map(([name, a]) => {
  const b = before.get(name) ?? { count: 0, size: 0 };
  return { name, count: (a.count - b.count) / per, bytes: (a.size - b.size) / per };
});
rows.sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log(`heap growth per subscriber: ${(total / 1024).toFixed(1)} KB (self sizes)`);
for (const r of rows.slice(0, Number(process.env.TOP ?? 40))) {
  console.log(`${(r.bytes / 1024).toFixed(2).padStart(8)} KB  ${r.count.toFixed(2).padStart(7)}x  ${r.name.slice(0, 100)}`);
}
