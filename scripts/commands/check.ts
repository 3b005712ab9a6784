import path from 'node:path';
import type { CommandModule } from 'yargs';
import { runCheck, type CheckRunReport, type SampleFixtures } from '../../src/convert/check.ts';
import { ExitCode } from '../../src/errors.ts';
import { generateV1Rows, V1_COLUMNS, V1_TABLES, type V1Table } from '../../fixtures/generate.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';
import { catalogServerSession } from '../../src/convert/catalogs.ts';
import { CATALOG_HELP, catalogOptions, catalogServer, catalogsFor, type CatalogArgs } from './convert.ts';

interface CheckArgs extends GlobalArgs, CatalogArgs {
  'sample-users': number;
}

/** The sample app's hostile generator; runCheck uses it only if the lowest version is exactly its v1. */
function sampleFixtures(users: number): SampleFixtures {
  return {
    version: 1,
    columns: V1_COLUMNS,
    rows: (t) => (V1_TABLES.includes(t as V1Table) ? generateV1Rows(t as V1Table, { users }) : []),
  };
}

/** The per-pair text report (--json prints the CheckRunReport instead). */
export function renderCheck(r: CheckRunReport): string {
  const rel = (f: string) => path.relative(process.cwd(), f) || f;
  const total = Object.values(r.fixtures.rows).reduce((a, b) => a + b, 0);
  const lines = [
    `${rel(r.mappingsDir)}: versions ${r.versions.map((v) => `v${v}`).join(', ')}; fixtures: ` +
      (r.fixtures.kind === 'sample'
        ? `the sample app's hostile data set (v${r.fixtures.version}, ${total} rows)`
        : r.fixtures.kind === 'files'
          ? `${r.fixtures.files.length} file(s) in ${rel(path.join(r.mappingsDir, 'fixtures', `v${r.fixtures.version}`))} (${total} rows)`
          : `none (add ${rel(path.join(r.mappingsDir, 'fixtures', `v${r.fixtures.version}`))}/<table>.csv to round-trip rows); mappings validated only`),
  ];
  lines.push(r.server ? `  SQL faces proven on ${r.server} (expressions prepared, SQL == JS on the fixtures)` : '  SQL faces not proven: no server reachable (pass --catalog-url)');
  for (const t of r.roundTrips) {
    const head = `  v${t.from} -> v${t.via} -> v${t.from}`.padEnd(22);
    if (t.error) {
      lines.push(`${head} FAILED  ${t.error}`);
      continue;
    }
    const lossy = t.tables.reduce((n, x) => n + x.lossyChanged, 0);
    const declared = t.lossyColumns.length === 0 ? '' : `lossy columns: ${t.lossyColumns.join(', ')}${lossy ? ` (${lossy} rows differ only there)` : ''}`;
    lines.push(
      t.ok
        ? `${head} ok      ${declared || 'lossless round trip'}`
        : `${head} FAILED  rows did not come back as they were sent${declared ? `; ${declared}` : ''}`,
    );
    for (const x of t.tables) {
      if (x.ok) continue;
      const parts = [
        x.missing.length ? `missing ${x.missing.join(' ')}` : '',
        x.extra.length ? `extra ${x.extra.join(' ')}` : '',
        x.changed.length ? `changed ${x.changed.map((c) => `${c.key} (${c.columns.join(', ')})`).join(' ')}` : '',
      ].filter(Boolean);
      lines.push(`      ${x.table}: ${parts.join('; ')}`);
    }
  }
  if (r.problems.length > 0) {
    lines.push(`${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`);
    for (const p of r.problems) lines.push(`  ${rel(p.file)}${p.path ? ` at ${p.path}` : ''}: ${p.message}${p.hint ? ` (hint: ${p.hint})` : ''}`);
  }
  lines.push(r.ok ? 'check passed' : r.problems.length > 0 ? 'check failed: invalid mappings or fixtures' : 'check failed: a round trip did not come back');
  return lines.join('\n');
}

export const checkCommand: CommandModule<GlobalArgs, CheckArgs> = {
  command: 'check',
  describe: 'Validate every mapping (all errors at once) and round-trip fixture rows through each version pair',
  builder: (y) =>
    catalogOptions(y)
      .option('sample-users', { type: 'string', default: 300, coerce: numberCoerce('sample-users', { integer: true, positive: true }), describe: "Users in the sample app's generated fixtures (sample app only)" })
      .example('$0 check', 'the default mappings/ folder')
      .example('$0 check --mappings ../myapp/versions --json', "another app's versions, machine-readable")
      .epilogue(
        'Fixture rows for the round trips, of the lowest version: the sample app\'s hostile generator when that version has exactly its tables and columns; ' +
          'otherwise <mappings>/fixtures/v<lowest>/<table>.csv (PostgreSQL CSV with a header, e.g. from `bluegreen export`), else the mappings are only validated.\n' +
          'Exit 0 when everything passes, 2 on an invalid mapping or fixture, 1 when a lossless round trip fails.\n\n' +
          CATALOG_HELP,
      ) as never,
  handler: handle<CheckArgs>(async (argv, ctx) => {
    const server = catalogServer(argv, ctx);
    const r = await runCheck({
      mappingsDir: ctx.settings.mappingsDir,
      catalogs: catalogsFor(argv, ctx, server),
      sample: sampleFixtures(argv['sample-users']),
      logger: ctx.logger,
      server: () => catalogServerSession(server),
    }).finally(() => server?.close());
    ctx.output(r, () => renderCheck(r));
    return r.problems.length > 0 ? ExitCode.invalid : r.ok ? ExitCode.ok : ExitCode.failure;
  }),
};
