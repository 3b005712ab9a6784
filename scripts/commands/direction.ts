import type { CommandModule } from 'yargs';
import { setDirection } from '../../src/cutover/direction.ts';
import { UsageError } from '../../src/errors.ts';
import { handle, pairOptions, resolvePair, type GlobalArgs, type PairArgs } from '../context.ts';

export const directionCommand: CommandModule<GlobalArgs, PairArgs> = {
  command: 'direction',
  describe: 'Set which way data flows between two environments (after a frozen side was unfrozen by hand)',
  builder: (y) =>
    pairOptions(y, 'The environment that serves (data flows from it)', 'The environment kept current from it (its writes since are overwritten by the next sync)')
      .example('$0 direction --from green --to blue', 'green serves; cron keeps blue current with: bluegreen sync --from green --to blue')
      .example('$0 direction --from blue --to green', 'blue serves again; the next sync --from blue --to green overwrites what green took since')
      .epilogue(
        'A cutover sets the direction itself; so does the first sync of a pair. After `unfreeze` of a side a finished cutover froze, ' +
          'both sides may take writes and every sync refuses until a person decides here. It moves no data and changes no freeze: ' +
          'run `bluegreen verify` first to see what differs, then the sync it prints.',
      ) as never,
  handler: handle<PairArgs>(async (argv, ctx) => {
    // No defaults: the choice is the point of this command.
    if (!argv.from && !argv['from-url']) throw new UsageError('name the side that serves: --from ENV', 'e.g. bluegreen direction --from green --to blue');
    if (!argv.to && !argv['to-url']) throw new UsageError('name the side kept current from it: --to ENV', 'e.g. bluegreen direction --from green --to blue');
    const pair = resolvePair(argv, ctx);
    const r = await setDirection({ from: pair.from, to: pair.to, logger: ctx.logger });
    ctx.output(r, () => [`direction: ${r.after}${r.changed ? '' : ' (already so)'}`, `was: ${r.before}`, `next: ${r.next}`].join('\n'));
  }),
};
