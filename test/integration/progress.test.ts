/**
 * Progress counts rows as rows and covers every phase that can take long. Regressions:
 * export reported 166 rows in its progress for a 12-row table (it counted lines, and
 * values hold newlines); an incremental sync's apply, deletes and check phases reported
 * nothing at all (12 s of a blank line for 200k changed rows).
 *
 * Progress is captured through the logger's own sink (JSON events, no throttle), as the
 * CLI renders it in a JSON log or on a terminal.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/log.ts';
import { exportDump } from '../../src/dump/export.ts';
import { importDump } from '../../src/dump/import.ts';
import { sync } from '../../src/sync/sync.ts';
import { query } from '../helpers/pg.ts';
import { makePair, MAPPINGS } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Event {
  task: string;
  phase?: string;
  step?: string;
  unit: string;
  done: number;
  total?: number;
  rows?: number;
  counts?: Record<string, number>;
  final?: boolean;
}

/** A logger whose every progress event is kept (the CLI throttles JSON lines to one per 5 s). */
function capture(): { logger: Logger; events: (task: string, phase: string) => Event[] } {
  const lines: string[] = [];
  const logger = createLogger({ format: 'json', progress: true, progressIntervalMs: 0, write: (l) => lines.push(l) });
  const events = (task: string, phase: string) =>
    lines
      .map((l) => JSON.parse(l))
      .filter((e) => e.msg === 'progress' && e.task === task && e.phase === phase) as Event[];
  return { logger, events };
}

/** 12 users whose names and emails hold newlines (13 lines each), commas and quotes. */
const MULTILINE_USERS = `
insert into users (username, full_name, email)
select 'u' || g,
       'line 1, "quoted"' || repeat(E'\\nnext, line "' || g || '"', 12),
       E'a\\n"b",\\r\\nc@' || g
  from generate_series(1, 12) g`;

describe('progress', () => {
  it('export and import count rows, not lines: 12 rows of multi-line values are 12 in the report and in every progress event', async () => {
    const p = await makePair(1, 1);
    await query(p.blue, MULTILINE_USERS);
    const out = path.join(await tempDir('progress-dump'), 'd');
    const ex = capture();
    const exported = await exportDump({ url: p.blue, environment: 'blue', mappingsDir: MAPPINGS, out, logger: ex.logger });
    expect(exported.tables.find((t) => t.table === 'users')!.rows).toBe(12);
    expect(exported.manifest.tables.find((t) => t.name === 'users')!.rows).toBe(12);
    const exporting = ex.events('users', 'export');
    expect(exporting.length).toBeGreaterThan(0);
    expect(exporting.at(-1)).toMatchObject({ final: true, unit: 'rows', done: 12 });
    expect(Math.max(...exporting.map((e) => e.done))).toBe(12);

    const im = capture();
    const imported = await importDump({ url: p.green, environment: 'green', mappingsDir: MAPPINGS, dir: out, logger: im.logger });
    expect(imported.tables.find((t) => t.table === 'users')!.rows).toBe(12);
    const loading = im.events('users', 'load');
    expect(loading.at(-1)).toMatchObject({ final: true, done: 12, total: 12 });
    expect(Math.max(...loading.map((e) => e.done))).toBe(12);
    // Index rebuild and ANALYZE after the bulk load are phases of their own.
    expect(im.events('users', 'index').filter((e) => e.final).map((e) => e.step)).toEqual(expect.arrayContaining([expect.stringMatching(/^users_pkey \(\d+\/\d+\)$/)]));
    expect(im.events('users', 'analyze').some((e) => e.final)).toBe(true);
  });

  it('an incremental sync reports its stage, deletes, apply and check phases with their row counts', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    // 30 changed (their rows hold newlines: counted as rows), 5 new, 3 gone.
    await query(p.blue, `update users set full_name = E'changed\\nover, "two" lines' where id between 11 and 40`);
    await query(p.blue, `insert into users (username, full_name) select 'new-' || g, E'x\\ny' from generate_series(1, 5) g`);
    await query(p.blue, `delete from users where id in (101, 102, 103)`);

    const { logger, events } = capture();
    const r = await sync({ from: { name: 'blue', url: p.blue }, to: { name: 'green', url: p.green }, mappingsDir: MAPPINGS, logger });
    const users = r.tables.find((t) => t.table === 'users')!;
    expect(r.mode).toBe('incremental');
    expect(users).toMatchObject({ mode: 'incremental', inserted: 5, updated: 30, deleted: 3 });
    expect(users.read).toBeGreaterThanOrEqual(35);

    // Stage: rows as rows, its last count what the report says was read.
    const stage = events('users', 'stage');
    expect(stage.at(-1)).toMatchObject({ final: true, unit: 'rows', done: users.read });
    expect(Math.max(...stage.map((e) => e.done))).toBe(users.read);
    // Deletes, apply and check: a timer over the rows they work on, then what they did.
    const deletes = events('users', 'deletes');
    expect(deletes[0]).toMatchObject({ unit: 'seconds' });
    expect(deletes.at(-1)).toMatchObject({ final: true, counts: { deleted: 3 } });
    const apply = events('users', 'apply');
    expect(apply[0]).toMatchObject({ unit: 'seconds', step: 'update', rows: users.read });
    expect(apply.some((e) => e.step === 'insert')).toBe(true);
    expect(apply.at(-1)).toMatchObject({ final: true, rows: users.read, counts: { updated: 30, inserted: 5 } });
    const check = events('users', 'check');
    expect(check[0]).toMatchObject({ unit: 'seconds', rows: users.read });
    expect(check.at(-1)).toMatchObject({ final: true, counts: { checked: users.read, mismatched: 0 } });
    expect(r.check?.clean).toBe(true);
  });
});
