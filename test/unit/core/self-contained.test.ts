import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SKIP = new Set(['node_modules', 'dist', '.git', '.bluegreen', 'dumps', 'results']);

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (/\.(ts|mjs|js|json|md|sh|sql|txt)$|^Makefile$|^run$/.test(e.name)) yield p;
  }
}

describe('the repository is self-contained', () => {
  it('cites no file outside itself (the product contract, measured facts or style notes live beside it, not in it)', () => {
    // Built from parts so this file does not match itself.
    const outside = new RegExp(['SPEC', 'FACTS', 'STYLE'].map((n) => `\\b${n}\\.md\\b`).join('|') + '|\\.\\./shared\\b');
    const hits: string[] = [];
    for (const f of files(ROOT)) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (outside.test(line)) hits.push(`${path.relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(hits).toEqual([]);
  });

  it('cites no numbered tracker items (ours or another project\'s), no paths of the machine it was written on, and no web address as a schema id', () => {
    // A reader of the repository cannot open a tracker's numbered items or the author's paths: what a decision rests
    // on is written out where it is used. Built from parts so this file does not match itself.
    const cited = new RegExp(
      ['\\bissues? #?\\d+', "\\bissue-\\d+", "\\bthe issue('s)?\\b", '\\b[\\w.-]+/[\\w.-]+#\\d+', '(?<![\\w.])/' + 'work/', 'bluegreen' + '\\.dev'].join('|'),
      'i',
    );
    const hits: string[] = [];
    for (const f of files(ROOT)) {
      if (path.basename(f) === 'package-lock.json') continue;
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (cited.test(line)) hits.push(`${path.relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(hits).toEqual([]);
  });
});
