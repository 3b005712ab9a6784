import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { catalogProvider, firstReachableServer, type CatalogDatabase, type CatalogProvider } from '../../src/convert/catalogs.ts';
import { convertDump } from '../../src/convert/convert.ts';
import { BluegreenError } from '../../src/errors.ts';
import { handle, type Context, type GlobalArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';

/** Options every offline command shares to find version catalogs. */
export interface CatalogArgs {
  'catalog-url'?: string;
  via?: string;
  'catalog-cache'?: string;
}

/** Help text shared by the commands that need catalogs offline. */
export const CATALOG_HELP =
  "Catalogs: a version's tables, columns and types are what PostgreSQL makes of its schema.sql, " +
  'learnt once in a rolled-back transaction (nothing stays) and cached in .bluegreen/catalogs/ keyed by the ' +
  "file's sha256. With a warm cache no database is needed; otherwise the first of --catalog-url, --via ENV, " +
  'the configured environments, BLUE_URL/GREEN_URL and the local `bluegreen env up` clusters that accepts a connection is used.';

/** Adds --catalog-url, --via and --catalog-cache to a command. */
export function catalogOptions<T>(y: Argv<T>) {
  return y
    .option('catalog-url', { type: 'string', describe: 'PostgreSQL to learn version catalogs on (needs CREATE on the database only)' })
    .option('via', { type: 'string', describe: 'Environment whose database learns the catalogs', defaultDescription: 'first reachable of the configured, blue, green' })
    .option('catalog-cache', { type: 'string', describe: 'Catalog cache folder', defaultDescription: '<state dir>/catalogs (.bluegreen/catalogs)' });
}

/** Databases to learn catalogs on, in the order the help text promises. */
export function catalogDatabases(argv: CatalogArgs, ctx: Context): CatalogDatabase[] {
  if (argv['catalog-url']) return [{ label: '--catalog-url', url: argv['catalog-url'] }];
  if (argv.via) {
    const env = ctx.env(argv.via);
    return [{ label: env.name, url: env.url }];
  }
  const out: CatalogDatabase[] = [];
  for (const name of [...Object.keys(ctx.settings.environments), 'blue', 'green']) {
    try {
      const env = ctx.env(name);
      if (!out.some((d) => d.url === env.url)) out.push({ label: env.name, url: env.url });
    } catch (err) {
      if (!(err instanceof BluegreenError)) throw err; // not configured: try the next
    }
  }
  return out;
}

/** The catalog provider an offline command uses: cache first, then the databases above. */
export function catalogsFor(argv: CatalogArgs, ctx: Context): CatalogProvider {
  return catalogProvider({
    mappingsDir: ctx.settings.mappingsDir,
    cacheDir: argv['catalog-cache'] ? path.resolve(argv['catalog-cache']) : path.join(ctx.settings.stateDir, 'catalogs'),
    databases: catalogDatabases(argv, ctx),
    logger: ctx.logger,
  });
}

interface ConvertArgs extends GlobalArgs, CatalogArgs {
  in: string;
  out: string;
  'to-version': number;
}

export const convertCommand: CommandModule<GlobalArgs, ConvertArgs> = {
  command: 'convert',
  describe: 'Convert a dump to another version through the mapping chain, offline (dump to dump, streaming)',
  builder: (y) =>
    catalogOptions(y)
      .option('in', { type: 'string', demandOption: true, describe: 'Dump directory to read (every checksum is verified first)' })
      .option('to-version', { type: 'string', demandOption: true, coerce: numberCoerce('to-version', { integer: true, positive: true }), describe: 'Version N to convert to (mappings/vN)' })
      .option('out', { type: 'string', demandOption: true, describe: 'New directory for the converted dump (must not exist or be empty; 0700, files 0600)' })
      .example('$0 convert --in dumps/blue-v1 --to-version 3 --out dumps/blue-v3', 'v1 dump -> v3 dump through v2')
      .example('$0 convert --in dumps/green-v3 --to-version 1 --out dumps/rollback --catalog-url postgres://me@localhost/scratch', 'down the chain, learning catalogs on a scratch database')
      .epilogue(
        CATALOG_HELP +
          '\n\nTables whose mapping chain has an operation without an exact JS face (a cast with a zone, json -> jsonb, an sql op without a JS twin) are converted by their SQL face on the same database, in a scratch schema inside a rolled-back transaction (nothing stays); with no database reachable they are refused before anything is written.',
      ) as never,
  handler: handle<ConvertArgs>(async (argv, ctx) => {
    const r = await convertDump({
      dir: argv.in,
      out: argv.out,
      toVersion: argv['to-version'],
      mappingsDir: ctx.settings.mappingsDir,
      catalogs: catalogsFor(argv, ctx),
      logger: ctx.logger,
      server: () => firstReachableServer(catalogDatabases(argv, ctx)),
    });
    ctx.output(
      { in: r.dir, out: r.out, fromVersion: r.fromVersion, toVersion: r.toVersion, tables: r.tables, rows: r.rows, ms: r.ms, rowsPerSecond: r.rowsPerSecond },
      () =>
        `converted v${r.fromVersion} -> v${r.toVersion} into ${r.out}: ` +
        r.tables.map((t) => `${t.table} ${t.rows}`).join(', ') +
        ` (${(r.ms / 1000).toFixed(1)} s, ${r.rowsPerSecond.toLocaleString('en-US')} rows/s)`,
    );
  }),
};
