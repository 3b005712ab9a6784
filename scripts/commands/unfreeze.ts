import type { CommandModule } from 'yargs';
import { unfreezeEnvironment } from '../../src/cutover/unfreeze.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface UnfreezeArgs extends GlobalArgs {
  env?: string;
  url?: string;
  force?: boolean;
}

export const unfreezeCommand: CommandModule<GlobalArgs, UnfreezeArgs> = {
  command: 'unfreeze',
  describe: 'Allow application writes again on an environment a cutover froze',
  builder: (y) =>
    y
      .option('env', { type: 'string', describe: 'Environment to unfreeze', defaultDescription: 'named after --url' })
      .option('url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('force', {
        type: 'boolean',
        describe: 'Unfreeze even when an interrupted cutover from here cannot be decided (its target unreachable); only if the application will not use that target',
      })
      .example('$0 unfreeze --env blue', 'blue accepts writes again (make sure the app does not write to both sides); a cutover from blue that stopped half-way is decided first: completed if green committed it (then blue stays frozen), else blue is unfrozen') as never,
  handler: handle<UnfreezeArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('env', argv.env, argv.url);
    const r = await unfreezeEnvironment({ env, resolveTarget: (name) => ctx.env(name), force: argv.force, logger: ctx.logger });
    ctx.output(r, () => {
      const lines = [r.lifted ? `${env.name}: writes allowed again (frozen since ${r.lifted.since} by ${r.lifted.by})` : `${env.name} was not frozen`];
      if (r.reconciled) lines.unshift(`${r.reconciled.detail}`);
      if (r.triggersLeftInert.length) lines.push(`  inert freeze triggers left on ${r.triggersLeftInert.join(', ')} (tables in use); they reject nothing, and the next unfreeze drops them`);
      return lines.join('\n');
    });
  }),
};
