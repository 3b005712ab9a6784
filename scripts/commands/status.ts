import type { CommandModule } from 'yargs';
import { environmentStatus, renderStatus } from '../../src/status.ts';
import { readClusterState } from '../../src/env/state.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface StatusArgs extends GlobalArgs {
  env?: string[];
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'Versions, watermarks and lag, last run and last verify of every environment',
  builder: (y) =>
    y
      .option('env', { type: 'string', array: true, describe: 'Environments to show', defaultDescription: 'configured ones, else blue and green' })
      .example('$0 status', 'what a DBA checks before a cutover')
      .example('$0 status --json', 'for monitoring: lagSeconds per source') as never,
  handler: handle<StatusArgs>(async (argv, ctx) => {
    const names = argv.env ?? [...new Set([...Object.keys(ctx.settings.environments), 'blue', 'green', ...Object.keys(readClusterState(ctx.settings.stateDir))])];
    const list: Awaited<ReturnType<typeof environmentStatus>>[] = [];
    for (const name of names) {
      let env;
      try {
        env = ctx.env(name);
      } catch (err) {
        // A name asked for by --env must exist (`status --env purple` is a typo, exit 2);
        // of the default names, one configured nowhere is skipped, a bad URL is not.
        if (argv.env || !/^no database for environment/.test((err as Error).message)) throw err;
        continue; // not configured anywhere: nothing to show
      }
      list.push(await environmentStatus(name, env.url, ctx.settings.mappingsDir));
    }
    ctx.output(list, () => (list.length ? renderStatus(list) : 'no environments: run `bluegreen env up`, or configure blue and green'));
  }),
};
