/**
 * Which columns verify hashes in binary, and which keep their text (src/verify/encoding.ts).
 * The exactness of each choice is proven on real PostgreSQL in
 * test/integration/verify-hash.test.ts; this pins the rule itself.
 */
import { describe, expect, it } from 'vitest';
import { encodingOf, fieldSql, rowHashSql } from '../../../src/verify/encoding.ts';

const base = { typtype: 'b', elem: null, elemoid: null, elemtype: null };
const t = (typname: string, oid: number, send: string, type = typname) => ({ ...base, type, typname, oid, send });
const arr = (elem: string, elemoid: number, elemtype = 'b', oid = 1000) => ({ ...t(`_${elem}`, oid, 'array_send', `${elem}[]`), elem, elemoid, elemtype });

describe('encodingOf', () => {
  it('hashes text, varchar, bytea and uuid directly', () => {
    for (const [n, oid] of [['text', 25], ['varchar', 1043], ['bytea', 17], ['uuid', 2950]] as const) {
      expect(encodingOf(t(n, oid, `${n}send`)).encoding).toBe('direct');
    }
  });
  it('sends numeric, timestamptz, interval, int8 and jsonb (their hashes follow = or fold bits)', () => {
    for (const [n, oid, send] of [['numeric', 1700, 'numeric_send'], ['timestamptz', 1184, 'timestamptz_send'], ['interval', 1186, 'interval_send'], ['int8', 20, 'int8send'], ['jsonb', 3802, 'jsonb_send']] as const) {
      expect(encodingOf(t(n, oid, send))).toEqual({ type: n, encoding: 'send', send });
    }
  });
  it('keeps the text of floats, geometric types and user-defined types', () => {
    expect(encodingOf(t('float8', 701, 'float8send')).encoding).toBe('text');
    expect(encodingOf(t('float4', 700, 'float4send')).encoding).toBe('text');
    expect(encodingOf(t('point', 600, 'point_send')).encoding).toBe('text');
    expect(encodingOf({ ...t('mood', 16500, 'enum_send'), typtype: 'e' }).encoding).toBe('text');
    expect(encodingOf({ ...t('email', 16501, 'textsend'), typtype: 'd' }).encoding).toBe('text');
    // An extension's type named like a built-in is still not one: its OID says so.
    expect(encodingOf(t('numeric', 16502, 'numeric_send')).encoding).toBe('text');
  });
  it('sends arrays of sendable built-ins with the has-nulls flag cleared, and keeps the text of other arrays', () => {
    expect(encodingOf(arr('numeric', 1700))).toMatchObject({ encoding: 'send', array: true });
    expect(encodingOf(arr('text', 25))).toMatchObject({ encoding: 'send', array: true });
    expect(encodingOf(arr('float8', 701)).encoding).toBe('text');
    expect(encodingOf(arr('mood', 16500, 'e', 16503)).encoding).toBe('text');
    expect(fieldSql('q.a', encodingOf(arr('int4', 23)))).toBe(`overlay(array_send(q.a) placing decode('00000000', 'hex') from 5 for 4)`);
  });
  it('hashes text under COLLATE "C" and mixes the combined row hash once more', () => {
    expect(fieldSql('q.c', encodingOf(t('varchar', 1043, 'varcharsend', 'character varying(20)')))).toBe(`(q.c)::text collate "C"`);
    expect(rowHashSql(['a', 'b'])).toBe(`hashtextextended(hash_record_extended(row(a, b), 0)::text, 0)`);
  });
});
