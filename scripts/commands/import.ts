import type { CommandModule } from 'yargs';
import { importDump, type ImportReport } from '../../src/dump/import.ts';
import { ExitCode } from '../../src/errors.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { numberCoerce, schemaVersionOption } from '../options.ts';

interface ImportArgs extends GlobalArgs {
  to?: string;
  'to-url'?: string;
  in: string;
  truncate?: boolean;
  'schema-version'?: number;
  verify: boolean;
  jobs: number;
}

function render(r: ImportReport): string {
  const lines = [
    `imported into ${r.environment} (v${r.dumpVersion}${r.dumpVersion !== r.version ? ` converted to v${r.version}` : ''}) in ${(r.ms / 1000).toFixed(1)} s`,
    ...r.tables.map((t) =>
      t.inserted !== undefined
        ? `  ${t.table.padEnd(18)} ${String(t.inserted).padStart(9)} inserted ${String(t.updated).padStart(9)} updated ${String(t.deleted).padStart(9)} deleted`
        : `  ${t.table.padEnd(18)} ${String(t.rows).padStart(9)} rows`,
    ),
  ];
  if (r.verify) {
    lines.push(
      r.verify.clean
        ? `  verify (${r.verify.method}): clean`
        : `  verify (${r.verify.method}): DIFFERENT in ${r.verify.differing.join(', ')} — compare with bluegreen verify against the source database`,
    );
  }
  return lines.join('\n');
}

export const importCommand: CommandModule<GlobalArgs, ImportArgs> = {
  command: 'import',
  describe: 'Load a dump into a database, all or nothing, after checking every checksum (converting it if versions differ)',
  builder: (y) =>
    y
      .option('to', { type: 'string', describe: 'Environment to write', defaultDescription: 'named after --to-url' })
      .option('to-url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('in', { type: 'string', demandOption: true, describe: 'Dump directory (full, or incremental from export --since)' })
      .option('truncate', { type: 'boolean', default: false, describe: "Replace the target's rows (in the same transaction); full dumps only" })
      .option('schema-version', schemaVersionOption('Target version, when it should not be detected'))
      .option('verify', { type: 'boolean', default: true, describe: 'Re-read what was loaded and compare with the dump (--no-verify skips)' })
      .option('jobs', {
        type: 'string',
        default: 1,
        coerce: numberCoerce('jobs', { integer: true, positive: true }),
        describe: "Load a full dump's files on this many extra connections into stage tables, then move them in the one transaction",
      })
      .example('$0 import --to green --in dumps/blue-full', 'load into an empty green; a v1 dump into a v2 green is converted on the fly')
      .example('$0 import --to green --in dumps/blue-full --truncate', "replace green's rows")
      .example('$0 import --to green --in dumps/blue-inc', 'apply an incremental dump: changed rows upserted, deleted keys removed') as never,
  handler: handle<ImportArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('to', argv.to, argv['to-url']);
    const r = await importDump({
      url: env.url,
      environment: env.name,
      mappingsDir: ctx.settings.mappingsDir,
      dir: argv.in,
      truncate: argv.truncate,
      version: argv['schema-version'] ?? env.version,
      verify: argv.verify,
      jobs: argv.jobs,
      logger: ctx.logger,
    });
    ctx.output(r, () => render(r));
    return r.verify && !r.verify.clean ? ExitCode.verifyDiff : ExitCode.ok;
  }),
};
