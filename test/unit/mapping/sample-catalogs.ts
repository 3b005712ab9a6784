/**
 * The sample app's catalogs (mappings/v1..v3/schema.sql) written by hand, so unit tests
 * need no database. The integration suite should assert that loadVersionCatalog() of each
 * schema.sql equals these, so they cannot drift.
 */
import type { Catalog } from '../../../src/db/catalog-types.ts';
import { catalog, table } from './catalog-helper.ts';

const TS = 'timestamp with time zone';

const settings = (statusCol: string) =>
  table('user_settings', [
    'id uuid pk',
    'user_id bigint not null',
    'preferences jsonb',
    'tags text[]',
    'avatar bytea',
    'balance numeric(20,6)',
    `last_login ${TS}`,
    statusCol,
    'birthday date',
    `updated_at ${TS} not null default`,
  ]);

export const v1: Catalog = catalog(
  table('roles', ['id integer pk identity', 'name text not null unique', 'description text', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('users', ['id bigint pk identity', 'username text not null unique', 'full_name text', 'email text', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('user_roles', ['user_id bigint not null', 'role_id integer not null', `granted_at ${TS} not null default`, `updated_at ${TS} not null default`], { pk: ['user_id', 'role_id'] }),
  settings('active boolean'),
);

export const v2: Catalog = catalog(
  table('roles', ['id bigint pk identity', 'name text not null unique', 'description text', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('users', ['id bigint pk identity', 'login text not null unique', 'first_name text', 'last_name text', 'email text', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('user_roles', ['user_id bigint not null', 'role_id bigint not null', `granted_at ${TS} not null default`, `updated_at ${TS} not null default`], { pk: ['user_id', 'role_id'] }),
  settings('status text not null default'),
);

export const v3: Catalog = catalog(
  table('groups', ['id bigint pk identity', 'name text not null unique', 'description text', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('users', ['id bigint pk identity', 'login text not null unique', `created_at ${TS} not null default`, `updated_at ${TS} not null default`]),
  table('user_profiles', ['id bigint pk', 'first_name text', 'last_name text', 'email text', `updated_at ${TS} not null default`]),
  table('user_groups', ['user_id bigint not null', 'group_id bigint not null', `granted_at ${TS} not null default`, `updated_at ${TS} not null default`], { pk: ['user_id', 'group_id'] }),
  settings('status text not null default'),
);

/** The sample app's catalogs by version. */
export const sampleCatalogs = { 1: v1, 2: v2, 3: v3 } as const;
