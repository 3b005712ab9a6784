import { describe, expect, it } from 'vitest';
import { diffCatalogs, loadOrder } from '../../../src/db/catalog.ts';
import type { Catalog, TableInfo } from '../../../src/db/catalog-types.ts';

function table(name: string, cols: [string, string][], pk: string[], refs: string[] = []): TableInfo {
  return {
    name,
    columns: cols.map(([n, type]) => ({ name: n, type, notNull: pk.includes(n), hasDefault: false, identity: false, generated: false })),
    primaryKey: pk,
    uniqueKeys: [],
    foreignKeys: refs.map((r) => ({ columns: [`${r}_id`], refTable: r, refColumns: ['id'] })),
  };
}

const v1: Catalog = {
  tables: {
    users: table('users', [['id', 'bigint'], ['username', 'text']], ['id']),
    roles: table('roles', [['id', 'integer']], ['id']),
    user_roles: table('user_roles', [['users_id', 'bigint'], ['roles_id', 'integer']], ['users_id', 'roles_id'], ['users', 'roles']),
  },
};

describe('catalog', () => {
  it('orders tables so parents load before children', () => {
    const order = loadOrder(v1);
    expect(order.indexOf('users')).toBeLessThan(order.indexOf('user_roles'));
    expect(order.indexOf('roles')).toBeLessThan(order.indexOf('user_roles'));
  });

  it('compares partitioning: a partitioned parent and a plain table of the same columns differ, partitions are not tables', () => {
    const parted = (by?: string): Catalog => ({ tables: { events: { ...table('events', [['id', 'bigint'], ['at', 'date']], ['id', 'at']), ...(by ? { partitionBy: by, partitionColumns: ['at'] } : {}) } } });
    expect(diffCatalogs(parted('RANGE (at)'), parted('RANGE (at)'))).toEqual([]);
    expect(diffCatalogs(parted(), parted('RANGE (at)'))).toEqual(['table events is not partitioned, expected partitioned by RANGE (at)']);
    expect(diffCatalogs(parted('LIST (at)'), parted('RANGE (at)'))).toEqual(['table events is partitioned by LIST (at), expected partitioned by RANGE (at)']);
  });

  it('reports drift line by line: missing, extra, retyped, nullability, keys', () => {
    const live: Catalog = JSON.parse(JSON.stringify(v1));
    live.tables.users!.columns[1]!.type = 'character varying(20)';
    live.tables.users!.columns.push({ name: 'nickname', type: 'text', notNull: false, hasDefault: false, identity: false, generated: false });
    delete live.tables.roles;
    live.tables.extra = table('extra', [['id', 'int']], []);
    live.tables.user_roles!.primaryKey = ['users_id'];
    expect(diffCatalogs(live, v1)).toEqual([
      'column users.username is character varying(20), expected text',
      'column users.nickname (text) is not in the version',
      'table roles is missing',
      'table user_roles has primary key (users_id), expected (users_id, roles_id)',
      'table extra is not in the version',
    ]);
    expect(diffCatalogs(v1, v1)).toEqual([]);
  });
});
