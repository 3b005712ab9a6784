/**
 * schema.sql is run inside a transaction: `schema apply` commits it, version detection runs
 * it in a scratch schema and rolls it back. A `BEGIN; … COMMIT;` pair in the file (common in
 * migration files) would end that transaction early: the scratch schema and whatever
 * follows the COMMIT would stay on the server, and a statement after it would run against
 * the real tables. So transaction control is refused before anything is sent.
 *
 * The scan splits the file at top-level semicolons the way the server's lexer would:
 * quotes, `E''` escapes, dollar quotes, quoted identifiers and both comment styles are
 * skipped, and a SQL-standard function body (`BEGIN ATOMIC … END`) is one statement. Only
 * the first words of each statement decide. Transaction control inside a DO block or a
 * procedure needs no scan: PostgreSQL refuses COMMIT/ROLLBACK there when the caller is in
 * a transaction block, which both paths are.
 */
import { InvalidInputError } from '../errors.ts';

/** A top-level statement of schema.sql that would end or nest the caller's transaction. */
export interface TransactionControl {
  /** 1-based line where the statement starts. */
  line: number;
  /** The statement's leading words, upper-cased (`BEGIN`, `COMMIT AND CHAIN`, …). */
  statement: string;
}

/** First word(s) of statements that control transactions. */
const CONTROL = new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE', 'PREPARE']);

interface Statement {
  line: number;
  words: string[];
}

/** Top-level statements of `sql`: line and leading words (outside quotes and comments). */
export function topLevelStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  let line = 1;
  let cur: Statement | undefined;
  // Depth of BEGIN ATOMIC / CASE … END inside a CREATE FUNCTION/PROCEDURE statement.
  let depth = 0;
  const n = sql.length;
  let i = 0;
  const word = (w: string, at: number) => {
    cur ??= { line: at, words: [] };
    const u = w.toUpperCase();
    const inRoutine = cur.words[0] === 'CREATE' && cur.words.some((x) => x === 'FUNCTION' || x === 'PROCEDURE');
    if (inRoutine && cur.words.length >= 2) {
      if (u === 'ATOMIC' && cur.words[cur.words.length - 1] === 'BEGIN') depth++;
      else if (u === 'CASE' && depth > 0) depth++;
      else if (u === 'END' && depth > 0) depth--;
    }
    if (cur.words.length < 64) cur.words.push(u);
  };
  while (i < n) {
    const c = sql[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      // Block comments nest in PostgreSQL.
      let nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (sql[i] === '\n') line++;
        if (sql[i] === '/' && sql[i + 1] === '*') (nest++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (nest--, (i += 2));
        else i++;
      }
      continue;
    }
    if (c === ';') {
      if (depth === 0) {
        if (cur) out.push(cur);
        cur = undefined;
      }
      i++;
      continue;
    }
    const startLine = line;
    // A string ('…', E'…' with backslash escapes) or a quoted identifier ("…"): a doubled
    // quote stands for itself. Either counts as one word of the statement.
    const quote = c === "'" || c === '"' ? c : (c === 'E' || c === 'e') && sql[i + 1] === "'" ? "'" : undefined;
    if (quote) {
      const escapes = c === 'E' || c === 'e';
      i += escapes ? 2 : 1;
      while (i < n) {
        const d = sql[i]!;
        if (d === '\n') line++;
        if (escapes && d === '\\') {
          i += 2;
          continue;
        }
        if (d === quote) {
          if (sql[i + 1] === quote) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      cur ??= { line: startLine, words: [] };
      if (cur.words.length < 64) cur.words.push(quote);
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 70));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close === -1 ? n : close + tag[0].length;
        for (let k = i; k < end; k++) if (sql[k] === '\n') line++;
        i = end;
        cur ??= { line: startLine, words: [] };
        if (cur.words.length < 64) cur.words.push('$$');
        continue;
      }
    }
    const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i, i + 128));
    if (m) {
      word(m[0], startLine);
      i += m[0].length;
      continue;
    }
    cur ??= { line: startLine, words: [] };
    if (cur.words.length < 64) cur.words.push(c);
    i++;
  }
  if (cur) out.push(cur);
  return out;
}

/** Every top-level transaction-control statement in `sql`. */
export function findTransactionControl(sql: string): TransactionControl[] {
  const found: TransactionControl[] = [];
  for (const s of topLevelStatements(sql)) {
    const first = s.words[0];
    if (!first || !CONTROL.has(first)) continue;
    // PREPARE name AS … is an ordinary prepared statement; PREPARE TRANSACTION is not.
    if (first === 'PREPARE' && s.words[1] !== 'TRANSACTION') continue;
    // START is only ever START TRANSACTION at statement level.
    found.push({ line: s.line, statement: s.words.slice(0, first === 'COMMIT' || first === 'ROLLBACK' ? 3 : 2).filter((w) => /^[A-Z_]+$/.test(w)).join(' ') });
  }
  return found;
}

/**
 * Refuses a schema.sql that controls transactions (exit 2, naming file and line). Called
 * on the file's text before any path runs it.
 */
export function assertNoTransactionControl(sql: string, file: string): void {
  const found = findTransactionControl(sql);
  if (found.length === 0) return;
  const first = found[0]!;
  throw new InvalidInputError(
    `${file}:${first.line}: ${first.statement} is transaction control, which schema.sql must not contain` +
      (found.length > 1 ? ` (also at line${found.length > 2 ? 's' : ''} ${found.slice(1).map((f) => f.line).join(', ')})` : ''),
    'remove BEGIN/COMMIT/ROLLBACK/SAVEPOINT from the file: bluegreen runs schema.sql in its own transaction (rolled back when it only learns the catalog)',
  );
}
