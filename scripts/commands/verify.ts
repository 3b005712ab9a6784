import type { CommandModule } from 'yargs';
import { verify, renderVerify } from '../../src/verify/verify.ts';
import { ExitCode } from '../../src/errors.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface VerifyArgs extends GlobalArgs {
  from: string;
  to: string;
  'from-url'?: string;
  'to-url'?: string;
  keys: number;
  recheck: boolean;
  table?: string[];
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Prove the target holds what the source holds, through the mappings; names every differing key',
  builder: (y) =>
    y
      .option('from', { type: 'string', default: 'blue', describe: 'Source environment' })
      .option('to', { type: 'string', default: 'green', describe: 'Target environment' })
      .option('from-url', { type: 'string', describe: 'Source URL, overriding the environment' })
      .option('to-url', { type: 'string', describe: 'Target URL, overriding the environment' })
      .option('keys', { type: 'number', default: 10, describe: 'Differing keys to name per table and kind (counts are always complete)' })
      .option('recheck', { type: 'boolean', default: true, describe: 'Compare differing rows once more before reporting (live source)' })
      .option('table', { type: 'string', array: true, describe: 'Only these target tables' })
      .example('$0 verify --from blue --to green', 'exit 0 when equal, 3 with the differing keys listed')
      .example('$0 verify --from green --to blue --json', 'rollback direction, machine-readable') as never,
  handler: handle<VerifyArgs>(async (argv, ctx) => {
    const from = ctx.env(argv.from, argv['from-url']);
    const to = ctx.env(argv.to, argv['to-url']);
    const r = await verify({
      from: { name: from.name, url: from.url, version: from.version },
      to: { name: to.name, url: to.url, version: to.version },
      mappingsDir: ctx.settings.mappingsDir,
      logger: ctx.logger,
      sampleKeys: argv.keys,
      recheck: argv.recheck,
      tables: argv.table,
    });
    ctx.output(r, () => renderVerify(r));
    return r.clean ? ExitCode.ok : ExitCode.verifyDiff;
  }),
};
