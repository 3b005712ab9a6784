/**
 * `bluegreen check` around the mapping engine's checkMappings: finds the catalogs and the
 * fixture rows of the lowest version, and decides what passing means.
 *
 * Fixture rows, in order of preference:
 * 1. a sample data set given by the caller (the CLI passes the sample app's hostile
 *    generator), used only when the lowest version has exactly its tables and columns, so
 *    nothing here assumes the sample app;
 * 2. `<mappings>/fixtures/v<lowest>/<table>.csv`: PostgreSQL CSV with a header (what
 *    `COPY ... TO STDOUT (FORMAT csv, HEADER true)` or a bluegreen dump writes), columns in
 *    any order, every non-generated column present; a table without a file has no rows;
 * 3. none: the mappings are only validated.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodeCsv } from '../codec/pg-csv.ts';
import type { Catalog } from '../db/catalog-types.ts';
import { BluegreenError, UsageError, type ValidationProblem } from '../errors.ts';
import type { Logger } from '../log.ts';
import { checkMappings, listMappingVersions, type CheckReport, type FixtureRows, type Row } from '../mapping/index.ts';
import type pg from 'pg';
import type { CatalogProvider } from './catalogs.ts';
import { inScratchSchema, loadRows, planFaces, prepareExpressions, serverStepRunner, textRows } from './faces.ts';
import { ident } from '../db/connect.ts';
import { loadChain } from '../mapping/chain.ts';
import { jsStepRunner } from '../mapping/check.ts';

/** A built-in data set for one version of a known app. */
export interface SampleFixtures {
  /** Version the rows are in. */
  version: number;
  /** Its tables and their columns in row order; used only when the catalog matches exactly. */
  columns: Readonly<Record<string, readonly string[]>>;
  /** Rows of one table. */
  rows(table: string): Iterable<Row>;
}

/** Where the fixture rows came from. */
export interface FixtureSource {
  /** `sample`: the built-in data set; `files`: mappings/fixtures; `none`: validation only. */
  kind: 'sample' | 'files' | 'none';
  /** Version of the rows. */
  version: number;
  /** Files read (kind `files`). */
  files: string[];
  /** Rows per table. */
  rows: Record<string, number>;
}

/** Result of {@link runCheck}: the engine's report plus where fixtures came from. */
export interface CheckRunReport extends CheckReport {
  /** Fixture rows used for the round trips. */
  fixtures: FixtureSource;
  /**
   * Where the SQL faces were proven (author-written expressions prepared, SQL face ==
   * JS face on the fixtures, tables without a JS face run): the server's label, or null
   * when none was reachable (then only the JS faces ran).
   */
  server: string | null;
  /** Mappings folder checked. */
  mappingsDir: string;
}

/** Options of {@link runCheck}. */
export interface RunCheckOptions {
  /** Folder of versions to check. */
  mappingsDir: string;
  /** Catalogs of every version in it. */
  catalogs: CatalogProvider;
  /** Built-in data set to use when the lowest version matches it. */
  sample?: SampleFixtures;
  /** Debug output only. */
  logger: Logger;
  /**
   * A server to prove the SQL faces on (the catalog server: --catalog-url, --via, the local
   * clusters or a scratch server). Nothing is left on it. Without one, only JS faces run.
   */
  server?: () => Promise<{ client: pg.Client; label: string } | undefined>;
}

const copyColumns = (catalog: Catalog, table: string) => catalog.tables[table]!.columns.filter((c) => !c.generated).map((c) => c.name);

function matchesSample(catalog: Catalog, sample: SampleFixtures): boolean {
  const names = Object.keys(catalog.tables).sort();
  const want = Object.keys(sample.columns).sort();
  if (names.join('\n') !== want.join('\n')) return false;
  return names.every((t) => copyColumns(catalog, t).join('\n') === sample.columns[t]!.join('\n'));
}

/** Fixture rows from `<mappings>/fixtures/v<version>/*.csv`; problems are collected, not thrown. */
async function fixtureFiles(mappingsDir: string, version: number, catalog: Catalog, problems: ValidationProblem[]): Promise<{ rows: FixtureRows; files: string[] } | undefined> {
  const dir = path.join(mappingsDir, 'fixtures', `v${version}`);
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((f) => f.endsWith('.csv')).sort();
  } catch {
    return undefined;
  }
  if (entries.length === 0) return undefined;
  const tables: Record<string, Row[]> = {};
  const files: string[] = [];
  for (const f of entries) {
    const file = path.join(dir, f);
    const table = f.slice(0, -'.csv'.length);
    if (!catalog.tables[table]) {
      problems.push({ file, path: '', message: `v${version} has no table ${table}`, hint: 'name fixture files <table>.csv after the tables of that version' });
      continue;
    }
    const want = copyColumns(catalog, table);
    try {
      // Fixtures are small by nature (check holds them in memory anyway): decode whole.
      const { columns, rows } = decodeCsv(await readFile(file), { header: true, file });
      const at = want.map((c) => columns!.indexOf(c));
      const missing = want.filter((_, i) => at[i] === -1);
      const extra = columns!.filter((c) => !want.includes(c));
      if (missing.length > 0 || extra.length > 0) {
        problems.push({
          file,
          path: '',
          message: [missing.length ? `missing column(s) ${missing.join(', ')}` : '', extra.length ? `unknown column(s) ${extra.join(', ')}` : ''].filter(Boolean).join('; '),
          hint: `the header must name every column of ${table} in v${version}: ${want.join(', ')}`,
        });
        continue;
      }
      tables[table] = rows.map((r) => at.map((i) => r[i] ?? null));
      files.push(file);
    } catch (err) {
      if (!(err instanceof BluegreenError)) throw err;
      problems.push({ file, path: '', message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    }
  }
  return { rows: { version, tables }, files };
}

/**
 * Validates every mapping in `mappingsDir` (all problems at once) and round-trips fixture
 * rows of the lowest version through every pair. Never throws for invalid mappings or
 * fixtures: they are in `problems`. Throws when the folder has no version or catalogs
 * cannot be had.
 */
export async function runCheck(opts: RunCheckOptions): Promise<CheckRunReport> {
  let versions: number[];
  try {
    versions = await listMappingVersions(opts.mappingsDir);
  } catch {
    versions = [];
  }
  if (versions.length === 0) throw new UsageError(`no versions (v1, v2, ...) in ${opts.mappingsDir}`, 'pass --mappings DIR pointing at your versions');
  const catalogs = await opts.catalogs(versions);
  const lowest = versions[0]!;
  const problems: ValidationProblem[] = [];
  let fixtures: FixtureRows = { version: lowest, tables: {} };
  let source: FixtureSource = { kind: 'none', version: lowest, files: [], rows: {} };
  if (opts.sample && opts.sample.version === lowest && matchesSample(catalogs[lowest]!, opts.sample)) {
    const tables: Record<string, Row[]> = {};
    for (const t of Object.keys(opts.sample.columns)) tables[t] = [...opts.sample.rows(t)];
    fixtures = { version: lowest, tables };
    source = { kind: 'sample', version: lowest, files: [], rows: {} };
  } else {
    const found = await fixtureFiles(opts.mappingsDir, lowest, catalogs[lowest]!, problems);
    if (found) {
      fixtures = found.rows;
      source = { kind: 'files', version: lowest, files: found.files, rows: {} };
    }
  }
  for (const [t, rows] of Object.entries(fixtures.tables)) source.rows[t] = rows.length;
  opts.logger.debug(`check: ${versions.length} versions, fixtures: ${source.kind}`, { rows: source.rows });
  const server = opts.server ? await opts.server() : undefined;
  let report: CheckReport;
  try {
    if (server) {
      // Fixture text as PostgreSQL prints it (numeric scale, jsonb, timestamps), so rows
      // the SQL face returns compare with rows the fixtures sent.
      fixtures = { version: lowest, tables: await canonicalRows(server.client, opts.mappingsDir, lowest, catalogs[lowest]!, fixtures.tables) };
      report = await checkMappings(opts.mappingsDir, catalogs, fixtures, serverStepRunner(server.client, opts.mappingsDir, catalogs, problems));
      // Without fixture rows for some pair, its expressions are still prepared.
      for (const v of versions.slice(1)) {
        for (const m of [...(await mappingsOf(opts.mappingsDir, v, catalogs))]) {
          const found = await inScratchSchema(server.client, opts.mappingsDir, m.from, async () => {
            const exprs = await prepareExpressions(server.client, m);
            // A bad expression already explains why its table's face fails.
            return exprs.length > 0 ? exprs : planFaces(server.client, m);
          });
          for (const p of found) if (!problems.some((q) => q.file === p.file && q.path === p.path)) problems.push(p);
        }
      }
    } else {
      report = await checkMappings(opts.mappingsDir, catalogs, fixtures, jsStepRunner);
    }
  } finally {
    await server?.client.end().catch(() => {});
  }
  const allProblems = [...problems, ...report.problems];
  // Without fixtures every round trip would pass on zero rows: report none rather than a false "ok".
  const roundTrips = source.kind === 'none' ? [] : report.roundTrips;
  return {
    ...report,
    problems: allProblems,
    roundTrips,
    ok: allProblems.length === 0 && roundTrips.every((r) => r.ok),
    fixtures: source,
    server: server?.label ?? null,
    mappingsDir: opts.mappingsDir,
  };
}

/** `rows` loaded into a scratch schema of `version` and read back as text. */
async function canonicalRows(client: pg.Client, mappingsDir: string, version: number, catalog: Catalog, rows: Record<string, Row[]>): Promise<Record<string, Row[]>> {
  return inScratchSchema(client, mappingsDir, version, async () => {
    await loadRows(client, catalog, rows);
    const out: Record<string, Row[]> = {};
    for (const name of Object.keys(rows)) {
      const cols = catalog.tables[name]!.columns.filter((c) => !c.generated).map((c) => ident(c.name));
      out[name] = await textRows(client, `select ${cols.join(', ')} from ${ident(name)}`);
    }
    return out;
  });
}

/** The valid mappings of version v (up and down); invalid ones are reported by checkMappings. */
async function mappingsOf(mappingsDir: string, v: number, catalogs: Record<number, Catalog>) {
  const out = [];
  for (const [a, b] of [[v - 1, v], [v, v - 1]] as const) {
    try {
      out.push(...(await loadChain(mappingsDir, a, b, catalogs)));
    } catch (err) {
      if (!(err instanceof BluegreenError)) throw err;
    }
  }
  return out;
}
