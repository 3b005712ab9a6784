import type { CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { unfreeze } from '../../src/cutover/freeze.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface UnfreezeArgs extends GlobalArgs {
  env: string;
  url?: string;
}

export const unfreezeCommand: CommandModule<GlobalArgs, UnfreezeArgs> = {
  command: 'unfreeze',
  describe: 'Allow application writes again on an environment a cutover froze',
  builder: (y) =>
    y
      .option('env', { type: 'string', demandOption: true, describe: 'Environment to unfreeze' })
      .option('url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .example('$0 unfreeze --env blue', 'blue accepts writes again (make sure the app does not write to both sides)') as never,
  handler: handle<UnfreezeArgs>(async (argv, ctx) => {
    const env = ctx.env(argv.env, argv.url);
    const client = await connect(env.url, { label: env.name, applicationName: 'bluegreen unfreeze' });
    try {
      await client.query('begin');
      const tables = await unfreeze(client);
      await client.query('commit');
      ctx.output({ environment: env.name, unfrozen: tables }, () => (tables.length ? `${env.name}: writes allowed again on ${tables.join(', ')}` : `${env.name} was not frozen`));
    } finally {
      await client.end().catch(() => {});
    }
  }),
};
