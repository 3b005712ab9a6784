import type pg from 'pg';
import type { Argv, CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { detectVersion, readCatalog, VersionCatalogs } from '../../src/db/catalog.ts';
import { compileChain, type CompiledChain } from '../../src/mapping/index.ts';
import type { Catalog } from '../../src/db/catalog-types.ts';
import { disableCapture, enableCapture, pruneCapture } from '../../src/sync/deletes.ts';
import { describeDeletePaths, type DeletePathSummary } from '../../src/cutover/delete-guardrails.ts';
import { BluegreenError, UsageError } from '../../src/errors.ts';
import type { Environment } from '../../src/config.ts';
import { handle, type Context, type GlobalArgs } from '../context.ts';

interface CaptureArgs extends GlobalArgs {
  action: 'enable' | 'disable' | 'prune';
  env: string;
  url?: string;
  to?: string;
  tables?: string;
  before?: string;
}

/** Options every action takes: the source. */
function sourceOptions(y: Argv<GlobalArgs>) {
  return y
    .option('env', { type: 'string', demandOption: true, describe: 'Source environment (the one the application writes to)' })
    .option('url', { type: 'string', describe: 'Connection URL, overriding the environment' });
}

const TABLES = { type: 'string', describe: 'Comma-separated tables (default: every table of the schema)' } as const;

const enable: CommandModule<GlobalArgs, CaptureArgs> = {
  command: 'enable',
  describe: 'Arm delete triggers on the source: incremental syncs read its deletes from bluegreen.deleted_rows from then on',
  builder: (y) =>
    sourceOptions(y)
      .option('to', {
        type: 'string',
        describe: 'The environment synced from it, whose mapping says which tables capture serves (append tables need none; merged or watermark-less tables still compare key sets)',
        defaultDescription: 'green (blue for --env green), when configured',
      })
      .option('tables', TABLES)
      .example('$0 capture enable --env blue', 'incremental syncs from blue now read deletes from bluegreen.deleted_rows')
      .example('$0 capture enable --env blue --to green --tables users,user_roles', 'two tables only, checked against the mapping blue -> green') as never,
  handler: (argv) => run({ ...argv, action: 'enable' }),
};

const disable: CommandModule<GlobalArgs, CaptureArgs> = {
  command: 'disable',
  describe: 'Remove the delete triggers: syncs compare whole key sets again',
  builder: (y) =>
    sourceOptions(y)
      .option('tables', TABLES)
      .example('$0 capture disable --env blue', 'every table') as never,
  handler: (argv) => run({ ...argv, action: 'disable' }),
};

const prune: CommandModule<GlobalArgs, CaptureArgs> = {
  command: 'prune',
  describe: 'Forget recorded deletes older than --before (every target must have read them)',
  builder: (y) =>
    sourceOptions(y)
      .option('before', { type: 'string', demandOption: true, describe: "A timestamptz older than every target's watermark (bluegreen status shows them), e.g. '2026-01-01' or now() - interval '7 days'" })
      .example("$0 capture prune --env blue --before '2026-06-01'", 'drop recorded deletes every target has consumed') as never,
  handler: (argv) => run({ ...argv, action: 'prune' }),
};

export const captureCommand: CommandModule<GlobalArgs, CaptureArgs> = {
  command: 'capture',
  describe: 'Record deletes on a source so incremental syncs find them without comparing whole key sets (opt-in; needs table ownership)',
  builder: (y) =>
    y
      .command(enable)
      .command(disable)
      .command(prune)
      .demandCommand(1, 'name what to do: capture enable, capture disable or capture prune')
      .example('$0 capture enable --env blue', 'incremental syncs from blue now read deletes from bluegreen.deleted_rows')
      .example("$0 capture prune --env blue --before '2026-06-01'", 'drop recorded deletes every target has consumed') as never,
  // Never reached: an action is demanded.
  handler: () => {},
};

const run = handle<CaptureArgs>(async (argv, ctx) => {
    const env = ctx.env(argv.env, argv.url);
    const client = await connect(env.url, { label: env.name, applicationName: `bluegreen capture ${argv.action}` });
    try {
      if (argv.action === 'prune') {
        if (!argv.before) throw new UsageError('capture prune needs --before', "give a time older than every target's watermark: bluegreen status shows them");
        const n = await pruneCapture(client, argv.before);
        ctx.output({ environment: env.name, pruned: n }, () => `${env.name}: ${n} recorded delete(s) before ${argv.before} forgotten`);
        return;
      }
      const listed = argv.tables ? argv.tables.split(',').map((t) => t.trim()).filter(Boolean) : Object.keys((await readCatalog(client)).tables).sort();
      if (argv.action === 'disable') {
        const r = await disableCapture(client, listed);
        ctx.output({ environment: env.name, action: argv.action, tables: r.tables }, () => `${env.name}: delete capture removed from ${r.tables.join(', ')}; syncs compare key sets again`);
        return;
      }
      await withTarget(argv, ctx, env, client, async (target) => {
        // A table read only as an append table has no deletes: no trigger, no cost per delete.
        const appendOnly = target ? appendSources(target.chain) : new Set<string>();
        const tables = listed.filter((t) => !appendOnly.has(t));
        const skipped = listed.filter((t) => appendOnly.has(t));
        const r = await enableCapture(client, tables);
        // What the next syncs will do per table, as the cutover's guardrail predicts it:
        // a table capture cannot serve is named with its size, never passed as covered.
        const paths = target ? await describeDeletePaths(env.name, target.name, client, target.dst, target.chain, target.catalog) : undefined;
        ctx.output(
          {
            environment: env.name,
            action: argv.action,
            tables: r.tables,
            ...(skipped.length ? { appendOnly: skipped } : {}),
            ...(target ? { to: target.name, deletes: { warning: paths!.warning, detail: paths!.detail, tables: Object.fromEntries(paths!.predictions) } } : { to: null }),
          },
          () => enableText(env.name, r.tables, skipped, target?.name, paths),
        );
      });
    } finally {
      await client.end().catch(() => {});
    }
  });

function enableText(source: string, tables: string[], skipped: string[], to: string | undefined, paths: DeletePathSummary | undefined): string {
  const lines = [`${source}: deletes on ${tables.join(', ') || 'no table'} are recorded; incremental syncs use them from their next lower bound on (run sync --reconcile now and then, e.g. nightly)`];
  if (skipped.length) lines.push(`  append tables have no deletes, no trigger armed: ${skipped.join(', ')}`);
  if (paths) lines.push(`  ${paths.warning ? 'WARN' : 'ok'} deletes ${source} -> ${to}: ${paths.detail}`);
  else lines.push(`  which tables capture serves is not known (no target's mapping read): name the environment synced from ${source} with --to, or run bluegreen plan`);
  return lines.join('\n');
}

/** Source tables read only by append target tables: insert-only, nothing to capture. */
function appendSources(chain: CompiledChain): Set<string> {
  const append = new Set<string>();
  const other = new Set<string>();
  for (const ct of Object.values(chain.tables)) for (const s of ct.sources) (ct.reload === 'append' ? append : other).add(s.table);
  return new Set([...append].filter((t) => !other.has(t)));
}

interface Target {
  name: string;
  dst: pg.Client;
  chain: CompiledChain;
  catalog: Catalog;
}

/**
 * The target synced from the source, with the mapping chain between them, for `fn`; undefined
 * when no target is configured (the default one) or its versions cannot be told. An explicit
 * --to that cannot be reached is an error.
 */
async function withTarget(argv: CaptureArgs, ctx: Context, source: Environment, src: pg.Client, fn: (t: Target | undefined) => Promise<void>): Promise<void> {
  let env: Environment;
  try {
    env = ctx.env(argv.to ?? (source.name === 'green' ? 'blue' : 'green'));
  } catch (err) {
    if (argv.to || !(err instanceof BluegreenError)) throw err;
    return fn(undefined);
  }
  let dst: pg.Client;
  try {
    dst = await connect(env.url, { label: env.name, applicationName: `bluegreen capture ${argv.action}` });
  } catch (err) {
    if (argv.to) throw err;
    ctx.logger.warn(`could not reach ${env.name} to read the mapping from ${source.name}: ${(err as Error).message}`);
    return fn(undefined);
  }
  try {
    let target: Target | undefined;
    try {
      const catalogs = new VersionCatalogs(ctx.settings.mappingsDir, dst);
      const from = source.version ?? (await detectVersion(src, catalogs, source.name)).version;
      const to = env.version ?? (await detectVersion(dst, catalogs, env.name)).version;
      if (from !== 'empty' && to !== 'empty') {
        const all = Object.fromEntries(await catalogs.all());
        target = { name: env.name, dst, chain: await compileChain(ctx.settings.mappingsDir, from, to, all), catalog: all[from]! };
      }
    } catch (err) {
      if (argv.to) throw err;
      ctx.logger.warn(`could not read the mapping ${source.name} -> ${env.name}: ${(err as Error).message}`);
    }
    await fn(target);
  } finally {
    await dst.end().catch(() => {});
  }
}
