import type { CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { readCatalog } from '../../src/db/catalog.ts';
import { disableCapture, enableCapture, pruneCapture } from '../../src/sync/deletes.ts';
import { UsageError } from '../../src/errors.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface CaptureArgs extends GlobalArgs {
  action: 'enable' | 'disable' | 'prune';
  env: string;
  url?: string;
  tables?: string;
  before?: string;
}

export const captureCommand: CommandModule<GlobalArgs, CaptureArgs> = {
  command: 'capture <action>',
  describe: 'Record deletes on a source so incremental syncs find them without comparing whole key sets (opt-in; needs table ownership)',
  builder: (y) =>
    y
      .positional('action', { choices: ['enable', 'disable', 'prune'] as const, describe: 'enable or disable the delete triggers; prune forgets recorded deletes older than --before' })
      .option('env', { type: 'string', demandOption: true, describe: 'Source environment (the one the application writes to)' })
      .option('url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('tables', { type: 'string', describe: 'Comma-separated tables (default: every table of the schema)' })
      .option('before', { type: 'string', describe: "prune: a timestamptz older than every target's watermark (e.g. '2026-01-01' or now() - interval)" })
      .example('$0 capture enable --env blue', 'incremental syncs from blue now read deletes from bluegreen.deleted_rows')
      .example("$0 capture prune --env blue --before '2026-06-01'", 'drop recorded deletes every target has consumed') as never,
  handler: handle<CaptureArgs>(async (argv, ctx) => {
    const env = ctx.env(argv.env, argv.url);
    const client = await connect(env.url, { label: env.name, applicationName: `bluegreen capture ${argv.action}` });
    try {
      if (argv.action === 'prune') {
        if (!argv.before) throw new UsageError('capture prune needs --before', "give a time older than every target's watermark: bluegreen status shows them");
        const n = await pruneCapture(client, argv.before);
        ctx.output({ environment: env.name, pruned: n }, () => `${env.name}: ${n} recorded delete(s) before ${argv.before} forgotten`);
        return;
      }
      const tables = argv.tables ? argv.tables.split(',').map((t) => t.trim()).filter(Boolean) : Object.keys((await readCatalog(client)).tables).sort();
      const r = argv.action === 'enable' ? await enableCapture(client, tables) : await disableCapture(client, tables);
      ctx.output({ environment: env.name, action: argv.action, tables: r.tables }, () =>
        argv.action === 'enable'
          ? `${env.name}: deletes on ${r.tables.join(', ')} are recorded; incremental syncs use them from their next lower bound on (run sync --reconcile now and then, e.g. nightly)`
          : `${env.name}: delete capture removed from ${r.tables.join(', ')}; syncs compare key sets again`,
      );
    } finally {
      await client.end().catch(() => {});
    }
  }),
};
