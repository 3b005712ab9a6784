import type { CommandModule } from 'yargs';
import { schemaApply } from '../../src/db/schema-apply.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { schemaVersionOption } from '../options.ts';

interface SchemaArgs extends GlobalArgs {
  to?: string;
  'to-url'?: string;
  'schema-version': number;
}

const apply: CommandModule<GlobalArgs, SchemaArgs> = {
  command: 'apply',
  describe: "Create a version's tables, keys and watermark comments (mappings/vN/schema.sql) in an empty database",
  builder: (y) =>
    y
      .option('to', { type: 'string', describe: 'Environment (blue, green, …)', defaultDescription: 'named after --to-url' })
      .option('to-url', { type: 'string', describe: 'Connection URL or key=value conninfo, overriding the environment' })
      .option('schema-version', schemaVersionOption('Version N to create (mappings/vN/schema.sql)', true))
      .example('$0 schema apply --to green --schema-version 2', 'create v2 in the empty green database')
      .example('$0 schema apply --to green --version 2', 'the same, with the short form')
      .example("$0 schema apply --to-url 'host=db1 dbname=app_next' --schema-version 3 --mappings ../myapp/versions", 'your own application, on a database named by conninfo') as never,
  handler: handle<SchemaArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('to', argv.to, argv['to-url']);
    const version = argv['schema-version'];
    const r = await schemaApply({ url: env.url, environment: env.name, mappingsDir: ctx.settings.mappingsDir, version, logger: ctx.logger });
    ctx.output({ environment: env.name, version, tables: r.tables }, () => `${env.name} is at v${version}`);
  }),
};

export const schemaCommand: CommandModule<GlobalArgs, SchemaArgs> = {
  command: 'schema',
  describe: "Create a version's schema in an empty database",
  builder: (y) =>
    y
      .command(apply)
      .demandCommand(1, 'name what to do: schema apply')
      .example('$0 schema apply --to green --schema-version 2', 'create v2 in the empty green database') as never,
  // Never reached: an action is demanded.
  handler: () => {},
};
