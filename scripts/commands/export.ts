import os from 'node:os';
import type { CommandModule } from 'yargs';
import { exportDump } from '../../src/dump/export.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { durationCoerce, numberCoerce, schemaVersionOption } from '../options.ts';

interface ExportArgs extends GlobalArgs {
  from?: string;
  'from-url'?: string;
  out: string;
  full?: boolean;
  since?: string;
  lookback?: string;
  'schema-version'?: number;
  jobs: number;
  force?: boolean;
}

export const exportCommand: CommandModule<GlobalArgs, ExportArgs> = {
  command: 'export',
  describe: 'Dump a database to a directory (manifest + one CSV per table), in one snapshot',
  builder: (y) =>
    y
      .option('from', { type: 'string', describe: 'Environment to read', defaultDescription: 'named after --from-url' })
      .option('from-url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('out', { type: 'string', demandOption: true, describe: 'New directory for the dump (created 0700, files 0600)' })
      .option('full', { type: 'boolean', describe: 'Every row (the default)', conflicts: 'since' })
      .option('since', { type: 'string', describe: "Incremental: rows whose watermark is at or after this timestamp, plus every table's key set (for deletes). Use the nextSince the previous export printed" })
      .option('lookback', { type: 'string', coerce: durationCoerce('lookback', { as: 'interval' }), describe: "Widen the next --since for application-side clocks (PostgreSQL interval, e.g. '2 minutes')" })
      .option('schema-version', schemaVersionOption('Source version, when it should not be detected'))
      .option('force', { type: 'boolean', describe: 'Replace a previous dump in --out (the partial output of a killed export is always cleaned up)' })
      .option('jobs', { type: 'string', default: os.availableParallelism(), coerce: numberCoerce('jobs', { integer: true, positive: true }), describe: 'Tables exported in parallel (same snapshot)' })
      .example('$0 export --from blue --out dumps/blue-full', 'full dump of blue')
      .example("$0 export --from blue --since '2026-11-26 12:00:00+00' --out dumps/blue-inc", 'what changed since the previous export (it printed that timestamp)') as never,
  handler: handle<ExportArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('from', argv.from, argv['from-url']);
    const r = await exportDump({
      url: env.url,
      environment: env.name,
      mappingsDir: ctx.settings.mappingsDir,
      out: argv.out,
      version: argv['schema-version'] ?? env.version,
      jobs: argv.jobs,
      since: argv.since,
      lookback: argv.lookback,
      force: argv.force,
      logger: ctx.logger,
    });
    ctx.output(
      { dir: r.dir, schemaVersion: r.manifest.schemaVersion, mode: r.manifest.mode, nextSince: r.nextSince, tables: r.tables, ms: r.ms },
      () =>
        `exported v${r.manifest.schemaVersion} (${r.manifest.mode}) to ${r.dir}: ` +
        r.tables.map((t) => `${t.table} ${t.rows}`).join(', ') +
        ` (${(r.ms / 1000).toFixed(1)} s)\nnext incremental export: --since '${r.nextSince}'`,
    );
  }),
};
