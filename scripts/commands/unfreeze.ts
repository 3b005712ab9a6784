import type { CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { unfreezeNow } from '../../src/cutover/freeze.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface UnfreezeArgs extends GlobalArgs {
  env?: string;
  url?: string;
}

export const unfreezeCommand: CommandModule<GlobalArgs, UnfreezeArgs> = {
  command: 'unfreeze',
  describe: 'Allow application writes again on an environment a cutover froze',
  builder: (y) =>
    y
      .option('env', { type: 'string', describe: 'Environment to unfreeze', defaultDescription: 'named after --url' })
      .option('url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .example('$0 unfreeze --env blue', 'blue accepts writes again (make sure the app does not write to both sides)') as never,
  handler: handle<UnfreezeArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('env', argv.env, argv.url);
    const client = await connect(env.url, { label: env.name, applicationName: 'bluegreen unfreeze' });
    try {
      // Lifting the freeze is one UPDATE, which no reader holds up; dropping the then
      // inert triggers is best effort and skips a table an open transaction is reading.
      const r = await unfreezeNow(client);
      ctx.output({ environment: env.name, lifted: r.lifted ?? null, triggersDropped: r.dropped, triggersLeftInert: r.inert }, () => {
        const lines = [r.lifted ? `${env.name}: writes allowed again (frozen since ${r.lifted.since} by ${r.lifted.by})` : `${env.name} was not frozen`];
        if (r.inert.length) lines.push(`  inert freeze triggers left on ${r.inert.join(', ')} (tables in use); they reject nothing, and the next unfreeze drops them`);
        return lines.join('\n');
      });
    } finally {
      await client.end().catch(() => {});
    }
  }),
};
