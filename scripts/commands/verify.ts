import type { CommandModule } from 'yargs';
import { verify, renderVerify } from '../../src/verify/verify.ts';
import { ExitCode } from '../../src/errors.ts';
import { handle, pairOptions, resolvePair, type GlobalArgs, type PairArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';

interface VerifyArgs extends GlobalArgs, PairArgs {
  keys: number;
  recheck: boolean;
  table?: string[];
  jobs: number;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Prove the target holds what the source holds, through the mappings; names every differing key',
  builder: (y) =>
    pairOptions(y)
      .option('keys', { type: 'string', default: 10, coerce: numberCoerce('keys', { integer: true, min: 0 }), describe: 'Differing keys to name per table and kind (counts are always complete)' })
      .option('recheck', { type: 'boolean', default: true, describe: 'Compare differing rows once more before reporting (live source)' })
      .option('table', { type: 'string', array: true, describe: 'Only these target tables' })
      .option('jobs', {
        type: 'string',
        default: 1,
        coerce: numberCoerce('jobs', { integer: true, positive: true }),
        describe:
          'Tables compared at once. Each job opens one session on each side; all sessions of a side read one snapshot, ' +
          'so the result is still one consistent view per side. Every job keeps one backend busy on EACH server, so N jobs ' +
          'want about 2N cores when both servers share a machine. Helps when several tables are large',
      })
      .example('$0 verify --from blue --to green', 'exit 0 when equal, 3 with the differing keys listed')
      .example('$0 verify --from green --to blue --json', 'rollback direction, machine-readable')
      .example('$0 verify --jobs 4', 'four tables at a time (four sessions per side, one snapshot per side)') as never,
  handler: handle<VerifyArgs>(async (argv, ctx) => {
    const pair = resolvePair(argv, ctx);
    const r = await verify({
      ...pair,
      mappingsDir: ctx.settings.mappingsDir,
      logger: ctx.logger,
      sampleKeys: argv.keys,
      recheck: argv.recheck,
      tables: argv.table,
      jobs: argv.jobs,
    });
    ctx.output(r, () => renderVerify(r));
    return r.clean ? ExitCode.ok : ExitCode.verifyDiff;
  }),
};
