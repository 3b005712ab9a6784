import type { CommandModule } from 'yargs';
import { importDump } from '../../src/dump/import.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface ImportArgs extends GlobalArgs {
  to: string;
  'to-url'?: string;
  in: string;
  truncate?: boolean;
  version?: number;
}

export const importCommand: CommandModule<GlobalArgs, ImportArgs> = {
  command: 'import',
  describe: 'Load a dump into a database, all or nothing, after checking every checksum',
  builder: (y) =>
    y
      .option('to', { type: 'string', demandOption: true, describe: 'Environment to write' })
      .option('to-url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('in', { type: 'string', demandOption: true, describe: 'Dump directory' })
      .option('truncate', { type: 'boolean', default: false, describe: "Replace the target's rows (in the same transaction)" })
      .option('version', { type: 'number', describe: 'Target version, when it should not be detected' })
      .example('$0 import --to green --in dumps/blue-full', 'load into an empty green')
      .example('$0 import --to green --in dumps/blue-full --truncate', "replace green's rows") as never,
  handler: handle<ImportArgs>(async (argv, ctx) => {
    const env = ctx.env(argv.to, argv['to-url']);
    const r = await importDump({
      url: env.url,
      environment: env.name,
      mappingsDir: ctx.settings.mappingsDir,
      dir: argv.in,
      truncate: argv.truncate,
      version: argv.version ?? env.version,
      logger: ctx.logger,
    });
    ctx.output(r, () => `imported into ${r.environment} (v${r.version}): ` + r.tables.map((t) => `${t.table} ${t.rows}`).join(', ') + ` (${(r.ms / 1000).toFixed(1)} s)`);
  }),
};
