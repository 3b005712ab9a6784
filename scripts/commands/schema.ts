import type { CommandModule } from 'yargs';
import { schemaApply } from '../../src/db/schema-apply.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';

interface SchemaArgs extends GlobalArgs {
  action: 'apply';
  to?: string;
  'to-url'?: string;
  version: number;
}

export const schemaCommand: CommandModule<GlobalArgs, SchemaArgs> = {
  command: 'schema <action>',
  describe: "Create a version's schema in an empty database",
  builder: (y) =>
    y
      .positional('action', { choices: ['apply'] as const, demandOption: true })
      .option('to', { type: 'string', describe: 'Environment (blue, green, …)', defaultDescription: 'named after --to-url' })
      .option('to-url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('version', { type: 'string', demandOption: true, coerce: numberCoerce('version', { integer: true, positive: true }), describe: 'Version N (mappings/vN/schema.sql)' })
      .example('$0 schema apply --to green --version 2', 'create v2 in the empty green database') as never,
  handler: handle<SchemaArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('to', argv.to, argv['to-url']);
    const r = await schemaApply({ url: env.url, environment: env.name, mappingsDir: ctx.settings.mappingsDir, version: argv.version, logger: ctx.logger });
    ctx.output({ environment: env.name, version: argv.version, tables: r.tables }, () => `${env.name} is at v${argv.version}`);
  }),
};
