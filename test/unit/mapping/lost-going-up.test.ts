/**
 * What a rollback verify (a chain going down) excludes: the columns the up mappings
 * declare lost, carried down to the target version. v1 -> v2 shifts DST gap times
 * (t.a lost), v2 -> v3 narrows t.n to char(2) (lost); going v3 -> v1 both are excluded,
 * v3 -> v2 only n, and nothing going up.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lostGoingUp } from '../../../src/mapping/index.ts';
import { tempDir } from '../../helpers/tmp.ts';
import { catalog, table } from './catalog-helper.ts';

const catalogs = {
  1: catalog(table('t', ['id bigint pk', 'a timestamp without time zone', 'n text'])),
  2: catalog(table('t', ['id bigint pk', 'a timestamp with time zone', 'n text'])),
  3: catalog(table('t', ['id bigint pk', 'a timestamp with time zone', 'n character(2)'])),
};

const step = (from: number, to: number, ops: unknown[], loses: { column: string; why: string }[] = []) => ({ from, to, tables: { t: { from: 't', ops } }, loses: loses.map((l) => ({ table: 't', ...l })) });

async function versions(): Promise<string> {
  const dir = await tempDir('lost-going-up');
  const files: Record<string, unknown> = {
    'v2/up.json': step(1, 2, [{ op: 'cast', from: 'a', zone: 'Europe/Berlin', dst: 'shift' }], [{ column: 'a', why: 'gap times move forward' }]),
    'v2/down.json': step(2, 1, [{ op: 'cast', from: 'a', zone: 'Europe/Berlin' }]),
    'v3/up.json': step(2, 3, [{ op: 'cast', from: 'n' }], [{ column: 'n', why: 'trailing blanks, longer codes refused' }]),
    'v3/down.json': step(3, 2, [{ op: 'cast', from: 'n' }]),
  };
  for (const v of [1, 2, 3]) {
    await mkdir(path.join(dir, `v${v}`));
    await writeFile(path.join(dir, `v${v}`, 'schema.sql'), '-- catalogs given by the test\n');
  }
  for (const [f, m] of Object.entries(files)) await writeFile(path.join(dir, f), JSON.stringify(m));
  return dir;
}

describe('lostGoingUp', () => {
  it('names the up mappings declared losses in the terms of the version a chain goes down to', async () => {
    const dir = await versions();
    expect(await lostGoingUp(dir, 3, 1, catalogs)).toEqual({ t: ['a', 'n'] });
    expect(await lostGoingUp(dir, 3, 2, catalogs)).toEqual({ t: ['n'] });
    expect(await lostGoingUp(dir, 2, 1, catalogs)).toEqual({ t: ['a'] });
    expect(await lostGoingUp(dir, 1, 3, catalogs)).toEqual({});
  });
});
