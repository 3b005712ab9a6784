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
});
