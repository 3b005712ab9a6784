/**
 * The interface every column operation implements (one file per op in ./ops/, in the
 * spirit of pgroll's op_*.go): `validate` against the two catalogs, `plan` into an SQL
 * face and a JS face, and `invert` into the ops of the reverse mapping.
 */
import type { ColumnInfo, TableInfo } from '../db/catalog-types.ts';
import type { ValidationProblem } from '../errors.ts';
import type { ColumnOpSpec, Row } from './types.ts';

/** A source column as an op sees it, resolved from a `columnRef`. */
export interface SourceColumn {
  /** Source table it belongs to. */
  table: string;
  /** Its catalog entry (type, nullability). */
  column: ColumnInfo;
  /** Position in the input row (the concatenated rows of the mapping's source tables). */
  index: number;
  /** Qualified SQL reference, e.g. `"s0"."username"`. */
  sql: string;
}

/** What an op can ask about the table mapping it is part of. */
export interface OpEnv {
  /** Mapping file, for problems. */
  file: string;
  /** JSON pointer of this op in the file, e.g. `/tables/users/ops/1`. */
  path: string;
  /** Target table name. */
  table: string;
  /** Target table in the target version's catalog. */
  target: TableInfo;
  /** Source table names (several for a merge). */
  sourceTables: string[];
  /** Resolves `name` or `table.name` to a source column; undefined when there is none. */
  resolve(ref: string): SourceColumn | undefined;
  /** Exports of the version's functions.ts (empty when there is none). */
  functions: Readonly<Record<string, unknown>>;
  /**
   * The file's `loses` names this source column. Ops whose loss cannot be analysed (sql)
   * take the declaration as the truth; `check`'s round trip on fixtures tests it.
   */
  declaredLost?(col: SourceColumn): boolean;
}

/** How an op writes one row, given the indices of its `writes` in the output row. */
export type JsFace = (outIndex: readonly number[]) => (src: Row, out: Row) => void;

/**
 * The JS face of an op that turns one source value into one target value: NULL stays
 * NULL; a value `convert` refuses becomes the caller's error (`refused`), which names the
 * table and column.
 */
export function valueFace(srcIndex: number, convert: (value: string) => string, refused: (value: string, err: Error) => Error): JsFace {
  return ([o]) => {
    const oi = o!;
    return (row, out) => {
      const v = row[srcIndex]!;
      if (v === null) {
        out[oi] = null;
        return;
      }
      try {
        out[oi] = convert(v);
      } catch (e) {
        throw refused(v, e as Error);
      }
    };
  };
}

/** The compiled form of a valid op. */
export interface OpPlan {
  /** Source columns it reads (consumed: not implicitly lost). */
  reads: SourceColumn[];
  /** Target columns it writes, in the order of `sql`. */
  writes: string[];
  /** Target columns it leaves to their DEFAULT. */
  omits: string[];
  /** Source columns it deliberately does not carry. */
  drops: SourceColumn[];
  /** Source columns whose information may not be recoverable from its output. */
  lossy: SourceColumn[];
  /** Output text always equals input text (rename, widening casts): may carry a key. */
  keySafe: boolean;
  /**
   * One-to-one and inverted exactly by the op's inverse on every value it accepts
   * (timestamp <-> timestamptz of one precision, DST gap and fold times refused in a zone
   * that has them): may carry a key too, compared through the op; see src/mapping/keys.ts.
   */
  keyCast?: boolean;
  /** One SQL expression per write, or why there is none. */
  sql: string[] | { unsupported: string };
  /** The JS face over text values, or why there is none. */
  js: JsFace | { unsupported: string };
  /**
   * Expressions the mapping's author wrote (sql ops, function ops' SQL faces), with the
   * source columns in their scope: `check` prepares each on a server so a typo is
   * reported with its file and JSON path.
   */
  userSql?: UserSql[];
}

/** One author-written SQL expression and its scope. */
export interface UserSql {
  /** JSON pointer of the expression in the mapping file. */
  path: string;
  /** The expression as written. */
  expr: string;
  /** The columns it may read: bare name and source type. */
  columns: { name: string; type: string }[];
}

/** One column operation. */
export interface ColumnOp<S extends ColumnOpSpec = ColumnOpSpec> {
  /** Every problem with `spec` against the catalogs; empty when valid. */
  validate(spec: S, env: OpEnv): ValidationProblem[];
  /** Compiles a spec that `validate` accepted. */
  plan(spec: S, env: OpEnv): OpPlan;
  /**
   * The ops of the reverse mapping (target -> source) that undo this one, named in the
   * reverse direction's terms; null when none can (a function without a declared inverse).
   */
  invert(spec: S, env: OpEnv): ColumnOpSpec[] | null;
}

/** Shorthand for a problem at `env.path` + `sub`. */
export function problemAt(env: OpEnv, sub: string, message: string, hint?: string): ValidationProblem {
  return { file: env.file, path: env.path + sub, message, ...(hint === undefined ? {} : { hint }) };
}

/** Validates that `ref` names a source column; pushes a problem otherwise. */
export function needSource(env: OpEnv, ref: string, sub: string, problems: ValidationProblem[]): SourceColumn | undefined {
  const col = env.resolve(ref);
  if (col === undefined) {
    problems.push(
      problemAt(env, sub, `source column "${ref}" does not exist in ${env.sourceTables.join(' or ')}`, 'check the spelling against the previous version\'s schema.sql'),
    );
  }
  return col;
}

/** Validates that `name` is a writable target column; pushes a problem otherwise. */
export function needTarget(env: OpEnv, name: string, sub: string, problems: ValidationProblem[]): ColumnInfo | undefined {
  const col = env.target.columns.find((c) => c.name === name);
  if (col === undefined) {
    problems.push(problemAt(env, sub, `target column "${name}" does not exist in table ${env.table}`, 'check the spelling against this version\'s schema.sql'));
  } else if (col.generated) {
    problems.push(problemAt(env, sub, `target column "${name}" is generated and cannot be written`, 'remove the op; PostgreSQL computes the column'));
    return undefined;
  }
  return col;
}

/** Must resolve; for `plan`, which runs only on validated specs. */
export function mustResolve(env: OpEnv, ref: string): SourceColumn {
  const col = env.resolve(ref);
  if (col === undefined) throw new Error(`unresolved source column ${ref} after validation`);
  return col;
}

/** Must exist; for `plan`, which runs only on validated specs. */
export function mustTarget(env: OpEnv, name: string): ColumnInfo {
  const col = env.target.columns.find((c) => c.name === name);
  if (col === undefined) throw new Error(`unknown target column ${name} after validation`);
  return col;
}

/** Text-like types a split/concat can work on without changing the text. */
export function isTextType(type: string): boolean {
  return type === 'text' || /^character varying(\(\d+\))?$/.test(type);
}

/** Name of a column for the reverse mapping: unqualified. */
export function bareName(ref: string): string {
  const dot = ref.indexOf('.');
  return dot < 0 ? ref : ref.slice(dot + 1);
}
