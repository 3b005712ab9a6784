/**
 * The op scenarios of the table-driven runner, shared by the unit runner (JS face, both
 * ways) and the integration test that runs each SQL face on PostgreSQL against its JS face.
 */
import type { OpScenario } from './op-harness.ts';
import type { Row } from '../../../src/mapping/types.ts';

export interface OpCase extends OpScenario {
  name: string;
  /** [source row, expected target row], both without id. */
  rows: [Row, Row][];
  /** Expected down(up(row)) per row when it is not the row itself (lossy). */
  back?: Row[];
  /** The up op has no SQL face. */
  sqlOnlyJs?: boolean;
  /** The down ops have no JS face (SQL-only cast). */
  downSqlOnly?: boolean;
  /** The up op has no JS face (runs in PostgreSQL even offline). */
  sqlOnlyUp?: boolean;
  /** A substring of the up SELECT. */
  sql?: string;
}

const hostile: string[] = ['', ' ', 'a', 'O\'Brien', 'a,b', 'line\nbreak', 'tab\there', 'back\\slash', '👩‍💻 émoji', '  lead', 'trail  ', 'NULL', '\\N'];

export const cases: OpCase[] = [
  {
    name: 'rename',
    source: ['username text'],
    target: ['login text'],
    op: { op: 'rename', from: 'username', to: 'login' },
    rows: [...hostile.map((h): [Row, Row] => [[h], [h]]), [[null], [null]]],
    sql: '"s0"."username" AS "login"',
  },
  {
    name: 'copy',
    source: ['a integer'],
    target: ['b integer'],
    op: { op: 'copy', from: 'a', to: 'b' },
    rows: [[['-5'], ['-5']], [[null], [null]]],
  },
  {
    name: 'constant',
    source: ['x text'],
    target: ['x text', 'status text not null'],
    op: { op: 'constant', column: 'status', value: 'new' },
    downLoses: ['status'],
    rows: [[['a'], ['a', 'new']], [[null], [null, 'new']]],
    sql: "(E'new')::text AS \"status\"",
  },
  {
    name: 'default',
    source: ['x text'],
    target: ['x text', 'note text'],
    op: { op: 'default', column: 'note' },
    downLoses: ['note'],
    rows: [[['a'], ['a', null]]],
  },
  {
    name: 'drop',
    source: ['x text', 'nickname text'],
    target: ['x text'],
    op: { op: 'drop', column: 'nickname' },
    upLoses: ['nickname'],
    rows: [[['a', 'nick'], ['a']], [['b', null], ['b']]],
    back: [['a', null], ['b', null]],
  },
  {
    name: 'split',
    source: ['full_name text'],
    target: ['first_name text', 'last_name text'],
    op: { op: 'split', from: 'full_name', to: ['first_name', 'last_name'], separator: ' ' },
    downLoses: ['first_name', 'last_name'],
    rows: [
      [['Ann Lee'], ['Ann', 'Lee']],
      [['Ann Lee Smith'], ['Ann', 'Lee Smith']],
      [['Cher'], ['Cher', null]],
      [[''], ['', null]],
      [[' '], ['', '']],
      [['a '], ['a', '']],
      [['  lead'], ['', ' lead']],
      [[null], [null, null]],
    ],
  },
  {
    name: 'split into three',
    source: ['path text'],
    target: ['a text', 'b text', 'c text'],
    op: { op: 'split', from: 'path', to: ['a', 'b', 'c'], separator: '::' },
    downLoses: ['a', 'b', 'c'],
    rows: [
      [['x::y::z::w'], ['x', 'y', 'z::w']],
      [['x::y'], ['x', 'y', null]],
      [['x'], ['x', null, null]],
      [['::'], ['', '', null]],
    ],
  },
  {
    name: 'concat',
    source: ['first_name text', 'last_name text'],
    target: ['full_name text'],
    op: { op: 'concat', from: ['first_name', 'last_name'], to: 'full_name', separator: ' ' },
    upLoses: ['first_name', 'last_name'],
    rows: [
      [['Ann', 'Lee'], ['Ann Lee']],
      [['Ann', null], ['Ann']],
      [[null, 'Lee'], [null]],
      [['Mary Ann', 'Lee'], ['Mary Ann Lee']],
      [['', ''], [' ']],
    ],
    back: [['Ann', 'Lee'], ['Ann', null], [null, null], ['Mary', 'Ann Lee'], ['', '']],
  },
  {
    name: 'map',
    source: ['active boolean'],
    target: ['status text not null'],
    op: { op: 'map', from: 'active', to: 'status', values: [['t', 'active'], ['f', 'disabled'], [null, 'unknown']] },
    rows: [[['t'], ['active']], [['f'], ['disabled']], [[null], ['unknown']]],
    sql: `WHEN "s0"."active" IS NULL THEN E'unknown'`,
  },
  {
    name: 'map with else (lossy)',
    source: ['kind text not null'],
    target: ['kind text not null'],
    op: { op: 'map', from: 'kind', values: [['a', 'A']], else: 'other' },
    down: [{ op: 'map', from: 'kind', values: [['A', 'a']], else: 'b' }],
    upLoses: ['kind'],
    downLoses: ['kind'],
    rows: [[['a'], ['A']], [['zzz'], ['other']]],
    back: [['a'], ['b']],
  },
  {
    name: 'cast integer -> bigint',
    source: ['role_id integer'],
    target: ['role_id bigint'],
    op: { op: 'cast', from: 'role_id' },
    rows: [[['2147483647'], ['2147483647']], [['-2147483648'], ['-2147483648']], [[null], [null]]],
    sql: '("s0"."role_id")::bigint',
  },
  {
    name: 'cast numeric(20,6) -> numeric(24,6)',
    source: ['balance numeric(20,6)'],
    target: ['balance numeric(24,6)'],
    op: { op: 'cast', from: 'balance' },
    rows: [[['-12345678901234.123456'], ['-12345678901234.123456']], [['NaN'], ['NaN']]],
  },
  {
    name: 'cast numeric(10,2) -> numeric(12,4) (down is SQL-only)',
    source: ['price numeric(10,2)'],
    target: ['price numeric(12,4)'],
    op: { op: 'cast', from: 'price' },
    downLoses: ['price'],
    downSqlOnly: true,
    rows: [[['1.50'], ['1.5000']], [['-0.01'], ['-0.0100']]],
  },
  {
    name: 'cast boolean -> text',
    source: ['flag boolean'],
    target: ['flag text'],
    op: { op: 'cast', from: 'flag' },
    downLoses: ['flag'],
    rows: [[['t'], ['true']], [['f'], ['false']], [[null], [null]]],
  },
  {
    name: 'cast text -> varchar(5)',
    source: ['code text'],
    target: ['code character varying(5)'],
    op: { op: 'cast', from: 'code' },
    rows: [[['abcde'], ['abcde']], [['👩👩👩👩👩'], ['👩👩👩👩👩']], [[''], ['']]],
  },
  {
    name: 'function',
    source: ['celsius numeric'],
    target: ['fahrenheit text'],
    op: { op: 'function', name: 'toF', from: ['celsius'], to: ['fahrenheit'], lossless: true },
    down: [{ op: 'function', name: 'toC', from: ['fahrenheit'], to: ['celsius'], lossless: true }],
    functions: {
      toF: ([c]: (string | null)[]) => [c == null ? null : `${c}C`],
      toC: ([f]: (string | null)[]) => [f == null ? null : f.slice(0, -1)],
    },
    sqlOnlyJs: true,
    rows: [[['12.5'], ['12.5C']], [[null], [null]]],
  },
  {
    name: 'function with an SQL face',
    source: ['celsius numeric'],
    target: ['fahrenheit text'],
    op: { op: 'function', name: 'toF', from: ['celsius'], to: ['fahrenheit'], lossless: true, sql: { fahrenheit: "celsius::text || 'C'" } },
    down: [{ op: 'function', name: 'toC', from: ['fahrenheit'], to: ['celsius'], lossless: true, sql: { celsius: "rtrim(fahrenheit, 'C')::numeric" } }],
    functions: {
      toF: ([c]: (string | null)[]) => [c == null ? null : `${c}C`],
      toC: ([f]: (string | null)[]) => [f == null ? null : f.slice(0, -1)],
    },
    rows: [[['12.5'], ['12.5C']], [[null], [null]]],
    sql: `(SELECT (celsius::text || 'C'\n) FROM (VALUES ("s0"."celsius")) AS bg_in("celsius"))`,
  },
  {
    name: 'sql with a JS twin',
    source: ['total_cents bigint'],
    target: ['total numeric(12,2)'],
    // A trailing comment must not swallow the closing parenthesis of the scope.
    op: { op: 'sql', from: ['total_cents'], to: 'total', expr: 'round(total_cents / 100.0, 2) -- cents to money', js: 'up' },
    down: [{ op: 'sql', from: ['total'], to: 'total_cents', expr: '(total * 100)::bigint', js: 'down' }],
    functions: {
      up: ([c]: (string | null)[]) => [c === null ? null : (Number(c) / 100).toFixed(2)],
      down: ([t]: (string | null)[]) => [t === null ? null : String(Math.round(Number(t) * 100))],
    },
    rows: [[['1999'], ['19.99']], [['-1'], ['-0.01']], [[null], [null]]],
    sql: 'AS bg_in("total_cents"))',
  },
  {
    name: 'scale cents -> numeric(12,2)',
    source: ['total_cents bigint'],
    target: ['total numeric(12,2)'],
    op: { op: 'scale', from: 'total_cents', to: 'total', factor: '0.01' },
    rows: [[['1999'], ['19.99']], [['0'], ['0.00']], [['-99999999999'], ['-999999999.99']], [[null], [null]]],
    sql: `::numeric * 0.01::numeric`,
  },
  {
    name: 'scale numeric(12,2) -> cents',
    source: ['total numeric(12,2)'],
    target: ['total_cents bigint'],
    op: { op: 'scale', from: 'total', to: 'total_cents', factor: '100' },
    rows: [[['19.99'], ['1999']], [['-0.01'], ['-1']], [[null], [null]]],
  },
  {
    name: 'cast timestamp -> timestamptz (UTC)',
    source: ['created_at timestamp without time zone'],
    target: ['created_at timestamp with time zone'],
    op: { op: 'cast', from: 'created_at' },
    rows: [[['2024-03-31 02:30:00'], ['2024-03-31 02:30:00+00']], [['infinity'], ['infinity']], [[null], [null]]],
    sql: `AT TIME ZONE E'UTC'`,
  },
  {
    name: 'cast timestamp -> timestamptz in Europe/Berlin (SQL-only both ways)',
    source: ['created_at timestamp without time zone'],
    target: ['created_at timestamp with time zone'],
    op: { op: 'cast', from: 'created_at', zone: 'Europe/Berlin' },
    sqlOnlyUp: true,
    rows: [],
    sql: `AT TIME ZONE E'Europe/Berlin'`,
  },
  {
    name: 'cast character(2) -> text',
    source: ['country character(2)'],
    target: ['country text'],
    op: { op: 'cast', from: 'country' },
    downLoses: ['country'],
    rows: [[['DE'], ['DE']], [['D '], ['D']], [[null], [null]]],
  },
  {
    name: 'cast jsonb -> json',
    source: ['doc jsonb'],
    target: ['doc json'],
    op: { op: 'cast', from: 'doc' },
    upLoses: [],
    downLoses: ['doc'],
    downSqlOnly: true,
    rows: [[['{"a": 1}'], ['{"a": 1}']]],
  },
  {
    name: 'cast text -> enum of the target only',
    source: ['status text'],
    target: ['status order_status'],
    op: { op: 'cast', from: 'status' },
    rows: [[['paid'], ['paid']], [[null], [null]]],
    sql: `("s0"."status")::text AS "status"`,
  },
];
