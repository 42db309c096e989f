/**
 * How `npm start` runs the server, read from package.json so tests and benches start the built
 * server exactly as users do: the node flags of its last command (`node <flags> dist/server/main.js`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The flags `npm start` gives node before `dist/server/main.js` (e.g. `--max-semi-space-size=64`). */
export function startNodeFlags(): string[] {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const last = (scripts.start ?? '').split('&&').pop()!.trim().split(/\s+/);
  if (last[0] !== 'node' || last[last.length - 1] !== 'dist/server/main.js') throw new Error(`the start script does not end with "node ... dist/server/main.js": update tests/helpers/start-command.ts`);
  return last.slice(1, -1);
}
