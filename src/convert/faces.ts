/**
 * The SQL face of mappings run in a scratch schema on a real server, for the offline
 * commands: `check` proves SQL face == JS face on the fixtures and prepares every
 * author-written expression against the source version's catalog; `convert` runs the
 * tables whose chain has no JS face. Everything happens inside a transaction that is
 * rolled back: the server keeps nothing, and the role needs only CREATE on the database.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Catalog } from '../db/catalog-types.ts';
import { loadOrder, readSchemaSql, schemaFile } from '../db/catalog.ts';
import { ident } from '../db/connect.ts';
import { InvalidInputError, type ValidationProblem } from '../errors.ts';
import { applyStep, compileStep, type CompiledTable, type Mapping, type Row } from '../mapping/index.ts';
import type { StepRunner } from '../mapping/check.ts';
import { queryProbeSql } from '../mapping/query.ts';
import { queryProblem } from './preflight.ts';

const raw = (v: string) => v;

/** Every value as PostgreSQL's text output (what COPY prints), no JS parsing. */
export async function textRows(client: pg.Client, sql: string): Promise<Row[]> {
  const r = await client.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => raw } } as pg.QueryConfig);
  return r.rows as Row[];
}

/**
 * Runs `body` with version `version`'s schema.sql applied in a fresh schema first on the
 * search path, inside a transaction that is always rolled back.
 */
export async function inScratchSchema<T>(client: pg.Client, mappingsDir: string, version: number, body: () => Promise<T>): Promise<T> {
  const schema = `bluegreen_scratch_${randomBytes(4).toString('hex')}`;
  await client.query('begin');
  try {
    await client.query(`create schema ${ident(schema)}`);
    await client.query(`set local search_path = ${ident(schema)}`);
    try {
      await client.query(await readSchemaSql(mappingsDir, version));
    } catch (err) {
      throw new InvalidInputError(`${schemaFile(mappingsDir, version)} does not apply: ${(err as Error).message}`, 'fix the DDL; it must use unqualified names and run in an empty schema');
    }
    return await body();
  } finally {
    await client.query('rollback').catch(() => {});
  }
}

/**
 * Opens a transaction with version `version`'s schema.sql applied in a fresh schema first
 * on the search path; `close` rolls it back (nothing stays).
 */
export async function openScratch(client: pg.Client, mappingsDir: string, version: number): Promise<{ close(): Promise<void> }> {
  let close!: () => void;
  const closed = new Promise<void>((resolve) => (close = resolve));
  let opened!: () => void;
  let failed!: (e: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => ((opened = resolve), (failed = reject)));
  const done = inScratchSchema(client, mappingsDir, version, async () => {
    opened();
    await closed;
  }).catch(failed);
  await ready;
  return {
    close: async () => {
      close();
      await done;
    },
  };
}

/** Inserts text-form rows into the scratch tables of `catalog` (parents first, user triggers off). */
export async function loadRows(client: pg.Client, catalog: Catalog, rows: Record<string, Row[]>): Promise<void> {
  for (const name of loadOrder(catalog)) {
    const t = catalog.tables[name]!;
    const data = rows[name] ?? [];
    await client.query(`alter table ${ident(name)} disable trigger user`);
    if (data.length === 0) continue;
    const cols = t.columns.filter((c) => !c.generated);
    const perBatch = Math.max(1, Math.floor(30000 / cols.length));
    for (let i = 0; i < data.length; i += perBatch) {
      const params: (string | null)[] = [];
      const tuples = data.slice(i, i + perBatch).map((row) =>
        `(${cols
          .map((c, k) => {
            // A column a mapping left to its DEFAULT arrives as NULL: let the DEFAULT fill it.
            if (row[k] === null && c.notNull && c.hasDefault) return 'DEFAULT';
            params.push(row[k] ?? null);
            return `$${params.length}`;
          })
          .join(', ')})`,
      );
      // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the fixture's key, as sync
      // keeps the source's (PostgreSQL refuses any value there otherwise: 428C9).
      await client.query(`insert into ${ident(name)} (${cols.map((c) => ident(c.name)).join(', ')}) overriding system value values ${tuples.join(', ')}`, params);
    }
  }
}

/** Sorted copy, for comparing row multisets. */
const sorted = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();

/** Where two row multisets first differ, for a message. */
function firstDifference(t: CompiledTable, sql: Row[], js: Row[]): string {
  const a = sorted(sql);
  const b = sorted(js);
  if (a.length !== b.length) return `${a.length} rows from SQL, ${b.length} from JS`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const x = JSON.parse(a[i]!) as Row;
    const y = JSON.parse(b[i]!) as Row;
    const c = x.findIndex((v, k) => v !== y[k]);
    return `column ${t.columns[c]}: SQL gives ${JSON.stringify(x[c])}, JS gives ${JSON.stringify(y[c])}`;
  }
  return 'same rows';
}

/** Prepares each author-written expression in a scope of exactly its `from` columns. */
export async function prepareExpressions(client: pg.Client, m: Mapping): Promise<ValidationProblem[]> {
  const problems: ValidationProblem[] = [];
  for (const t of m.analysis.tables) {
    if (t.query) {
      const tables = t.inputs.map((i) => ({ name: i.table.name, columns: i.columns.map((c) => ({ name: c.name, type: c.type })) }));
      const outputs = t.outputs.map((o) => o.column);
      await client.query('savepoint bg_expr');
      try {
        await client.query(`explain ${queryProbeSql(t.query.sql, tables, outputs)}`);
        await client.query('release savepoint bg_expr');
      } catch (err) {
        await client.query('rollback to savepoint bg_expr');
        problems.push(queryProblem(m.file, t.query.path, m.from, err as Error, outputs));
      }
      continue;
    }
    for (const op of t.ops) {
      for (const u of op?.userSql ?? []) {
        const scope = u.columns.map((c) => `NULL::${c.type} AS ${ident(c.name)}`).join(', ');
        await client.query('savepoint bg_expr');
        try {
          await client.query(`explain select (${u.expr}\n) from (select ${scope}) as bg_in`);
          await client.query('release savepoint bg_expr');
        } catch (err) {
          await client.query('rollback to savepoint bg_expr');
          problems.push({
            file: m.file,
            path: u.path,
            message: `does not run on v${m.from}: ${(err as Error).message}`,
            hint: `the expression may read only the op's "from" columns (${u.columns.map((c) => c.name).join(', ')}), by bare name, and types of v${m.from}`,
          });
        }
      }
    }
  }
  return problems;
}

/**
 * Plans every table's SQL face (EXPLAIN) on the empty scratch tables of the mapping's
 * source version: without fixture rows, a face that cannot run there (a type the source
 * lacks, a wrong expression) is still found. Call inside inScratchSchema.
 */
export async function planFaces(client: pg.Client, m: Mapping): Promise<ValidationProblem[]> {
  const problems: ValidationProblem[] = [];
  const step = compileStep(m, { fullWidth: true });
  for (const plan of m.analysis.tables) {
    const t = step.tables[plan.table]!;
    if (t.sqlUnsupported.length > 0) continue;
    await client.query('savepoint bg_plan');
    try {
      await client.query(`explain ${t.selectSql(ident)}`);
      await client.query('release savepoint bg_plan');
    } catch (err) {
      await client.query('rollback to savepoint bg_plan');
      problems.push({ file: m.file, path: plan.path, message: `the SQL face does not run on v${m.from}: ${(err as Error).message}`, hint: 'sync, verify and cutover run it on the source: fix the op it names' });
    }
  }
  return problems;
}

/**
 * A StepRunner for `check` that runs every table's SQL face on `client` (source rows
 * loaded into a scratch schema of the mapping's source version), proves it equal to the
 * JS face where there is one, and reports through `problems` (deduplicated). Returns the
 * SQL face's rows, so tables without a JS face are checked too.
 */
export function serverStepRunner(client: pg.Client, mappingsDir: string, catalogs: Readonly<Record<number, Catalog>>, problems: ValidationProblem[]): StepRunner {
  const seen = new Set(problems.map((p) => `${p.file}|${p.path}|${p.message}`));
  const report = (p: ValidationProblem) => {
    const k = `${p.file}|${p.path}|${p.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      problems.push(p);
    }
  };
  return async (m, rows) =>
    inScratchSchema(client, mappingsDir, m.from, async () => {
      for (const p of await prepareExpressions(client, m)) report(p);
      await loadRows(client, catalogs[m.from]!, rows);
      const step = compileStep(m, { fullWidth: true });
      const partial = compileStep(m, { fullWidth: true, partialJs: true });
      const out: Record<string, Row[]> = {};
      for (const plan of m.analysis.tables) {
        const t = step.tables[plan.table]!;
        let js: Row[] | undefined;
        if (t.jsUnsupported.length === 0) js = applyStep({ tables: { [plan.table]: t } }, rows)[plan.table];
        // Ops without a JS face: their columns are compared out of both sides, the rest still are.
        const p = partial.tables[plan.table]!;
        const blank = (p.jsMissing ?? []).map((c) => p.columns.indexOf(c));
        const without = (rs: Row[]) => rs.map((r) => r.map((v, i) => (blank.includes(i) ? null : v)));
        const partialJs = t.jsUnsupported.length > 0 && t.sqlUnsupported.length === 0 ? applyStep({ tables: { [plan.table]: p } }, rows)[plan.table] : undefined;
        if (t.sqlUnsupported.length > 0) {
          if (js === undefined) throw new InvalidInputError(`table ${plan.table} has neither an SQL nor a JS face`);
          out[plan.table] = js;
          continue;
        }
        let sql: Row[];
        await client.query('savepoint bg_face');
        try {
          sql = await textRows(client, t.selectSql(ident));
          await client.query('release savepoint bg_face');
        } catch (err) {
          await client.query('rollback to savepoint bg_face');
          report({ file: m.file, path: plan.path, message: `the SQL face fails on the fixture rows of v${m.from}: ${(err as Error).message}`, hint: 'fix the op it names, or the fixture row' });
          if (js === undefined) throw new InvalidInputError(`table ${plan.table}: the SQL face fails on the fixtures and there is no JS face`);
          out[plan.table] = js;
          continue;
        }
        if (plan.query) {
          // The declared key must be unique in what the query yields: proven on the fixtures.
          // Reported once; the rest of the round trip goes on with one row per key (a later
          // step loads these rows under the key, which would refuse them all).
          const at = plan.key.map((k) => t.columns.indexOf(k));
          const seen = new Set<string>();
          const once: Row[] = [];
          let twice: Row | undefined;
          for (const r of sql) {
            const k = JSON.stringify(at.map((i) => r[i]));
            if (!seen.has(k)) (seen.add(k), once.push(r));
            else twice ??= r;
          }
          sql = once;
          if (twice) {
            report({
              file: m.file,
              path: plan.query.path,
              message: `the query yields key (${plan.key.join(', ')}) = (${at.map((i) => twice[i]).join(', ')}) more than once on the fixture rows of v${m.from}`,
              hint: `make it yield each key once (group by ${plan.key.join(', ')}), or declare the key its rows have`,
            });
          }
        }
        const compared = js ?? partialJs;
        const sqlSide = js === undefined ? without(sql) : sql;
        if (compared !== undefined && sorted(sqlSide).join('\n') !== sorted(compared).join('\n')) {
          report({
            file: m.file,
            path: plan.path,
            message: `SQL face and JS face differ on the fixture rows of v${m.from}: ${firstDifference(t, sqlSide, compared)}`,
            hint: 'make the JS twin (functions.ts) and the SQL expression agree: offline paths run the JS face, live ones the SQL face',
          });
        }
        out[plan.table] = sql;
      }
      return out;
    });
}
