/** Transaction control in schema.sql is found at top level and nowhere else. */
import { describe, expect, it } from 'vitest';
import { assertNoTransactionControl, findTransactionControl } from '../../../src/db/schema-guard.ts';
import { InvalidInputError } from '../../../src/errors.ts';

const lines = (sql: string) => findTransactionControl(sql).map((f) => `${f.line}:${f.statement}`);

describe('schema.sql transaction control', () => {
  it('finds every top-level form with its line', () => {
    const sql = [
      'begin;', // 1
      'create table a (id int);', // 2
      'COMMIT;', // 3
      'START TRANSACTION ISOLATION LEVEL SERIALIZABLE;', // 4
      'savepoint s1; release savepoint s1;', // 5
      'rollback to savepoint s1;', // 6
      'commit and chain;', // 7
      'end;', // 8
      'abort;', // 9
      'Begin Transaction;', // 10
      'prepare transaction \'x\';', // 11
      '/* a comment */ commit', // 12, no trailing semicolon
    ].join('\n');
    expect(lines(sql)).toEqual([
      '1:BEGIN',
      '3:COMMIT',
      '4:START TRANSACTION',
      '5:SAVEPOINT',
      '5:RELEASE SAVEPOINT',
      '6:ROLLBACK TO SAVEPOINT',
      '7:COMMIT AND CHAIN',
      '8:END',
      '9:ABORT',
      '10:BEGIN TRANSACTION',
      "11:PREPARE TRANSACTION",
      '12:COMMIT',
    ]);
  });

  it('ignores the words inside strings, comments, dollar quotes and function bodies', () => {
    const sql = `
-- begin; commit;
/* commit; /* nested */ rollback; */
create table t (id int primary key, note text default 'commit; begin;', "begin" text);
comment on column t.note is E'it\\'s; commit';
create function f() returns trigger language plpgsql as $fn$
begin
  commit;
  return new;
end $fn$;
create function g(a int) returns int language sql
begin atomic
  select case when a > 0 then 1 else 0 end;
  select a;
end;
do $$ begin perform 1; end $$;
prepare q as select 1;
create table after_all (id int);
`;
    expect(lines(sql)).toEqual([]);
  });

  it('a BEGIN after a function body with BEGIN ATOMIC is still found, on its own line', () => {
    const sql = `create function g() returns int language sql
begin atomic
  select 1;
end;
begin;
create table x (id int);
commit;`;
    expect(lines(sql)).toEqual(['5:BEGIN', '7:COMMIT']);
  });

  it('the error names the file and line and says what to do', () => {
    let err: unknown;
    try {
      assertNoTransactionControl('create table a (id int);\n\nBEGIN;\ncreate table b (id int);\nCOMMIT;\n', 'mappings/v1/schema.sql');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/^mappings\/v1\/schema\.sql:3: BEGIN is transaction control.*\(also at line 5\)/);
    expect((err as InvalidInputError).hint).toMatch(/remove BEGIN/);
  });
});
