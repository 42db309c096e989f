/**
 * `npm run migration:create -- <Name>`: writes migrations/Migration<timestamp><Name>.ts with the SQL
 * that turns a database migrated to the newest migration into what the entities describe
 * (MikroORM's schema diff), and registers it in migrations/index.ts. Review the file before
 * committing it: the diff knows nothing of data (a rename comes out as drop + add).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { migrationName } from './orm.js';
import { schemaToolServer, withMigratedScratchDatabase } from './scratch.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

/** Adds `className` (a file in migrations/) to the explicit list in migrations/index.ts. */
export function registerMigration(className: string, indexFile = join(MIGRATIONS_DIR, 'index.ts')): void {
  const source = readFileSync(indexFile, 'utf8');
  if (source.includes(`'${className}'`)) return;
  const imports = [...source.matchAll(/^import .*;$/gm)];
  const last = imports[imports.length - 1];
  const end = source.lastIndexOf('];');
  if (!last || end < 0) throw new Error(`cannot find where to register ${className} in ${indexFile}`);
  const afterImports = last.index + last[0].length;
  const withEntry = `${source.slice(0, end)}  { name: '${className}', class: ${className} },\n${source.slice(end)}`;
  const next = `${withEntry.slice(0, afterImports)}\nimport { ${className} } from './${className}.js';${withEntry.slice(afterImports)}`;
  writeFileSync(indexFile, next);
}

async function main(args: string[]): Promise<number> {
  const name = args.filter((a) => !a.startsWith('-')).join(' ');
  if (!/[A-Za-z]/.test(name)) {
    console.error('usage: npm run migration:create -- <Name>   (e.g. AddProjectBudget)');
    return 2;
  }
  const blank = args.includes('--blank');
  const server = await schemaToolServer();
  try {
    const result = await withMigratedScratchDatabase(
      server.url,
      (orm) => orm.getMigrator().createMigration(MIGRATIONS_DIR, blank, false, name),
      { migrations: { path: MIGRATIONS_DIR, pathTs: MIGRATIONS_DIR, emit: 'ts', fileName: migrationName } },
    );
    if (!result.fileName) {
      console.log('migration:create: the entities and the migrations agree; nothing to write (use --blank for a hand-written one).');
      return 0;
    }
    const className = result.fileName.replace(/\.ts$/, '');
    registerMigration(className);
    console.log(`migration:create: wrote migrations/${result.fileName} and registered it in migrations/index.ts:\n`);
    console.log(result.diff.up.join('\n'));
    console.log('\nReview it (data, locks on big tables), run `npm run db:check`, then commit both files.');
    return 0;
  } finally {
    await server.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error('migration:create failed:', err);
      process.exit(2);
    },
  );
}
