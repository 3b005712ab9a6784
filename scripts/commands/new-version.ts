import path from 'node:path';
import type { CommandModule } from 'yargs';
import { scaffoldVersion } from '../../src/mapping/index.ts';
import { handle, type GlobalArgs } from '../context.ts';

export const newVersionCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'new-version',
  describe: 'Scaffold the next version from the current one (schema copy, identity up/down)',
  builder: (y) =>
    y
      .example('$0 new-version', 'mappings/v3 -> mappings/v4 with v3/schema.sql copied and identity mappings')
      .example('$0 new-version --mappings ../myapp/db/versions', "your own application's versions") as never,
  handler: handle<GlobalArgs>(async (_argv, ctx) => {
    const dir = ctx.settings.mappingsDir;
    const r = await scaffoldVersion(dir);
    const rel = (f: string) => path.relative(process.cwd(), f) || f;
    const prev = r.version - 1;
    const next = [
      `edit ${rel(r.files[0]!)}: the DDL of v${r.version}`,
      `describe what changed in ${rel(r.files[1]!)} (v${prev} -> v${r.version}) and ${rel(r.files[2]!)} (back), declaring in "loses" what cannot come back`,
      `run \`bluegreen check${dir === path.resolve('mappings') ? '' : ` --mappings ${rel(dir)}`}\`: it validates both files and round-trips fixtures through them`,
    ];
    ctx.output({ version: r.version, dir: r.dir, files: r.files, next }, () =>
      [`created v${r.version} in ${rel(r.dir)}:`, ...r.files.map((f) => `  ${rel(f)}`), 'next:', ...next.map((n, i) => `  ${i + 1}. ${n}`)].join('\n'),
    );
  }),
};
