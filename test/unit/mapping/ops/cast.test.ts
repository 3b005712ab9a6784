import { describe, expect, it } from 'vitest';
import { castRule, parseBoolean } from '../../../../src/mapping/ops/cast.ts';
import { runOp } from '../op-harness.ts';

describe('cast', () => {
  it('parses booleans the way PostgreSQL boolin does', () => {
    for (const t of ['t', 'TRUE', ' yes ', 'y', 'on', '1', 'tr']) expect(parseBoolean(t)).toBe('t');
    for (const f of ['f', 'False', 'no', 'n', 'off', 'of', '0']) expect(parseBoolean(f)).toBe('f');
    for (const bad of ['o', '', 'maybe', '2', 'yess']) expect(() => parseBoolean(bad)).toThrow(/invalid input syntax/);
  });

  it('has an exact JS face only where the text is known', () => {
    const exact: [string, string][] = [
      ['integer', 'bigint'],
      ['bigint', 'integer'],
      ['smallint', 'numeric(10,2)'],
      ['numeric(20,6)', 'numeric(24,6)'],
      ['numeric(20,2)', 'numeric(20,4)'],
      ['text', 'character varying(3)'],
      ['boolean', 'text'],
      ['uuid', 'text'],
      ['jsonb', 'json'],
      ['timestamp without time zone', 'timestamp with time zone'],
      ['character(2)', 'text'],
      ['text', 'character(2)'],
    ];
    for (const [a, b] of exact) expect(castRule(a, b).js, `${a} -> ${b}`).toBeDefined();
    const sqlOnly: [string, string][] = [
      ['numeric(20,6)', 'numeric(20,2)'],
      ['numeric', 'numeric(10,2)'],
      ['text', 'integer'],
      ['json', 'jsonb'],
      ['inet', 'text'],
    ];
    for (const [a, b] of sqlOnly) expect(castRule(a, b).js, `${a} -> ${b}`).toBeUndefined();
    expect(castRule('timestamp without time zone', 'timestamp with time zone', 'Europe/Berlin').js).toBeUndefined();
  });

  it('narrowing and precision checks fail like PostgreSQL', () => {
    expect(() => castRule('bigint', 'integer').js!('2147483648')).toThrow(/out of range for type integer/);
    expect(castRule('bigint', 'integer').js!('-2147483648')).toBe('-2147483648');
    expect(() => castRule('numeric(20,6)', 'numeric(8,6)').js!('123.000000')).toThrow(/numeric field overflow/);
    expect(castRule('integer', 'numeric(10,2)').js!('-7')).toBe('-7.00');
    expect(() => castRule('text', 'character varying(2)').js!('abc')).toThrow(/value too long/);
  });

  it('refuses a cast to the same type, and a missing cast is named in the error', () => {
    expect(() => runOp({ source: ['a integer'], target: ['a integer'], op: { op: 'cast', from: 'a' } })).toThrow(/cast does nothing/);
    expect(() => runOp({ source: ['a integer', 'b integer'], target: ['a bigint', 'b bigint'], op: { op: 'cast', from: 'a' } })).toThrow(
      /t\.b is bigint in v2 but t\.b is integer in v1 \(hint: add \{"op": "cast", "from": "b"\}\)/,
    );
  });

  it('a SQL-only cast refuses offline conversion naming the op', () => {
    const run = runOp({ source: ['p numeric(10,4)'], target: ['p numeric(10,2)'], op: { op: 'cast', from: 'p' }, upLoses: ['p'], down: [{ op: 'cast', from: 'p' }] });
    expect(run.up.jsUnsupported).toEqual(['cast p (numeric(10,4)) -> p (numeric(10,2)) at /tables/t/ops/0 has no exact JS face']);
    expect(() => run.forward(['1.2345'])).toThrow(/table t cannot be converted offline \(in Node\): cast p/);
    expect(run.up.selectSql((t) => t)).toContain('("s0"."p")::numeric AS "p"');
  });
});

describe('cast: zones, char(n), user-defined types', () => {
  it('timestamp <-> timestamptz converts AT TIME ZONE, UTC unless a zone is given', () => {
    expect(castRule('timestamp without time zone', 'timestamp with time zone').sql('x')).toBe("((x) AT TIME ZONE E'UTC')::timestamp with time zone");
    expect(castRule('timestamp with time zone', 'timestamp without time zone', 'Europe/Berlin', 'shift').sql('x')).toBe("((x) AT TIME ZONE E'Europe/Berlin')::timestamp without time zone");
    const up = castRule('timestamp without time zone', 'timestamp with time zone').js!;
    const down = castRule('timestamp with time zone', 'timestamp without time zone').js!;
    for (const v of ['2024-02-29 23:59:59.999999', '0044-03-15 12:00:00 BC', 'infinity', '-infinity', '2024-01-01 00:00:00']) expect(down(up(v))).toBe(v);
    expect(up('2024-01-01 10:00:00.5')).toBe('2024-01-01 10:00:00.5+00');
    expect(castRule('timestamp(6) without time zone', 'timestamp(3) with time zone').lossy).toBe(true);
  });

  it('a key may go through timestamp <-> timestamptz only where it is one-to-one: same precision, a zone of one fixed offset or DST times refused', () => {
    const ts = 'timestamp without time zone';
    const tz = 'timestamp with time zone';
    for (const zone of [undefined, 'UTC', 'Etc/GMT+5', 'Asia/Kolkata']) {
      expect(castRule(ts, tz, zone).keyCast, `${zone} up`).toBe(true);
      expect(castRule(tz, ts, zone).keyCast, `${zone} down`).toBe(true);
    }
    // Daylight saving time: one-to-one on the values the cast accepts while it refuses gap
    // and fold times (or reads a fold as its later instant); not once "shift" moves them.
    for (const zone of ['Europe/Berlin', 'America/New_York']) {
      expect(castRule(ts, tz, zone).keyCast, zone).toBe(true);
      expect(castRule(tz, ts, zone).keyCast, zone).toBe(true);
      expect(castRule(ts, tz, zone, 'later').keyCast, zone).toBe(true);
      expect(castRule(ts, tz, zone, 'shift').keyCast, zone).toBe(false);
      expect(castRule(tz, ts, zone, 'shift').keyCast, zone).toBe(false);
    }
    // More digits on the way up: the way back rounds, so two keys could meet.
    expect(castRule('timestamp(3) without time zone', tz).keyCast).toBe(false);
    expect(castRule(ts, 'timestamp(3) with time zone').keyCast).toBe(false);
    expect(castRule('text', 'integer').keyCast ?? false).toBe(false);
  });

  it('a zone on another cast, or an unknown zone, is refused at its JSON path', () => {
    expect(() => runOp({ source: ['a integer'], target: ['a bigint'], op: { op: 'cast', from: 'a', zone: 'UTC' } })).toThrow(/\/tables\/t\/ops\/0\/zone.*applies only to timestamp/);
    expect(() => runOp({ source: ['a timestamp without time zone'], target: ['a timestamp with time zone'], op: { op: 'cast', from: 'a', zone: 'Mars/Olympus' } })).toThrow(/unknown time zone "Mars\/Olympus"/);
  });

  it('char(n) -> text is lossless (padding restored on the way back); text -> char(n) declares its loss', () => {
    const run = runOp({ source: ['code character(3)'], target: ['code text'], op: { op: 'cast', from: 'code' }, downLoses: ['code'] });
    expect(run.forward(['ab '])).toEqual(['ab']);
    expect(run.roundTrip(['ab '])).toEqual(['ab ']);
    expect(run.roundTrip(['   '])).toEqual(['   ']);
    expect(run.upMapping.analysis.lost).toEqual([]);
    expect(run.downMapping.analysis.lost).toEqual(['t.code']);
    expect(() => castRule('text', 'character(2)').js!('abc')).toThrow(/value too long for type character\(2\)/);
    expect(castRule('text', 'character(2)').js!('ab   ')).toBe('ab');
    expect(castRule('character(4)', 'character(2)').js!('ab  ')).toBe('ab');
  });

  it('a cast to a type the source may not have (enum, domain) produces text on the source', () => {
    const r = castRule('text', 'order_status');
    expect(r.sql('"s0"."status"')).toBe('("s0"."status")::text');
    expect(r.js!('paid')).toBe('paid');
    expect(r.lossy).toBe(false);
    expect(castRule('order_status', 'text').sql('x')).toBe('(x)::text');
    expect(castRule('order_status', 'integer').js).toBeUndefined();
  });

  it('json -> jsonb is SQL-only and lossy; known widenings are lossless', () => {
    expect(castRule('json', 'jsonb').lossy).toBe(true);
    expect(castRule('real', 'double precision')).toMatchObject({ lossy: false });
    expect(castRule('double precision', 'real').lossy).toBe(true);
  });
});

describe('cast: local times in a DST gap or fold (dst)', () => {
  const LOCAL = 'timestamp without time zone';
  const INSTANT = 'timestamp with time zone';

  it('refuse (the default) loses nothing; shift is a loss; in UTC there is nothing to refuse', () => {
    expect(castRule(LOCAL, INSTANT, 'Europe/Berlin').lossy).toBe(false);
    expect(castRule(INSTANT, LOCAL, 'Europe/Berlin').lossy).toBe(false);
    expect(castRule(LOCAL, INSTANT, 'Europe/Berlin', 'shift').lossy).toBe(true);
    expect(castRule(INSTANT, LOCAL, 'Australia/Lord_Howe', 'shift').lossy).toBe(true);
    expect(castRule(LOCAL, INSTANT, 'UTC', 'shift').lossy).toBe(false);
    // UTC's SQL face stays the bare conversion: no test to pay for per row.
    expect(castRule(LOCAL, INSTANT).sql('x')).toBe("((x) AT TIME ZONE E'UTC')::timestamp with time zone");
  });

  it('refuse tests every value in SQL; shift is PostgreSQL own reading', () => {
    const refuse = castRule(LOCAL, INSTANT, 'Europe/Berlin').sql('x');
    expect(refuse).toContain('does not exist in Europe/Berlin (DST gap');
    expect(refuse).toContain('occurs twice in Europe/Berlin (DST fold');
    expect(refuse).not.toMatch(/'1 day'/); // a day's length would follow the session's TimeZone
    expect(castRule(INSTANT, LOCAL, 'Europe/Berlin').sql('x')).toContain('which occurs twice (DST fold) and reads back as');
    expect(castRule(LOCAL, INSTANT, 'Europe/Berlin', 'shift').sql('x')).toBe("((x) AT TIME ZONE E'Europe/Berlin')::timestamp with time zone");
  });

  it('shift needs its loss declared; the inverse of a shift refuses (it meets only times that read back)', () => {
    const op = { op: 'cast', from: 'at', zone: 'Europe/Berlin', dst: 'shift' } as const;
    expect(() => runOp({ source: [`at ${LOCAL}`], target: [`at ${INSTANT}`], op })).toThrow(/\/tables\/t\/ops\/0\/dst: "shift" moves local times in a DST gap of Europe\/Berlin forward/);
    const run = runOp({ source: [`at ${LOCAL}`], target: [`at ${INSTANT}`], op, upLoses: ['at'] });
    expect(run.upMapping.analysis.lost).toEqual(['t.at']);
    expect(run.downMapping.analysis.lost).toEqual([]);
    expect(run.down.selectSql((t) => t)).toContain('reads back as');
  });

  it('a zoned cast keeps its JS face only in UTC (offline paths run the SQL face in PostgreSQL)', () => {
    expect(castRule(LOCAL, INSTANT, 'UTC', 'shift').js).toBeDefined();
    expect(castRule(LOCAL, INSTANT, 'Europe/Berlin', 'shift').js).toBeUndefined();
    expect(castRule(LOCAL, INSTANT, 'Europe/Berlin').js).toBeUndefined();
  });
});

describe('cast: dst "later"', () => {
  const LOCAL = 'timestamp without time zone';
  const INSTANT = 'timestamp with time zone';
  it('refuses gap times only, and loses nothing (the later instant reads back as the same local time)', () => {
    const later = castRule(LOCAL, INSTANT, 'Europe/Berlin', 'later');
    expect(later.lossy).toBe(false);
    expect(later.sql('x')).toContain('does not exist in Europe/Berlin (DST gap');
    expect(later.sql('x')).not.toContain('occurs twice');
    const run = runOp({ source: [`at ${LOCAL}`], target: [`at ${INSTANT}`], op: { op: 'cast', from: 'at', zone: 'Europe/Berlin', dst: 'later' } });
    expect(run.upMapping.analysis.lost).toEqual([]);
  });
});
