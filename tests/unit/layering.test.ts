/** The layout rule of docs/decisions.md ("Layout"): only routers and server/trpc/ know the transport. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('layering', () => {
  it('no service, job, CLI or gateway code imports tRPC or server/trpc/ (routers and server/app.ts do)', () => {
    const checked = [
      ...filesUnder(join(root, 'server/modules')).filter((f) => !f.endsWith('/router.ts')),
      ...filesUnder(join(root, 'server/jobs')),
      ...filesUnder(join(root, 'server/email')),
      ...filesUnder(join(root, 'server/events')),
      join(root, 'server/admin.ts'),
      join(root, 'server/services.ts'),
      join(root, 'server/errors.ts'),
    ];
    const offenders = checked.filter((file) => /from ['"](@trpc\/server[^'"]*|[^'"]*\/trpc\/[^'"]*)['"]/.test(readFileSync(file, 'utf8')));
    expect(offenders.map((f) => relative(root, f))).toEqual([]);
  });
});
