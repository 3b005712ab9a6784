import path from 'node:path';
import type { CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { scaffoldFromDatabase, scaffoldVersion } from '../../src/mapping/scaffold.ts';
import { redactUrl } from '../../src/redact.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface NewVersionArgs extends GlobalArgs {
  from?: string;
  'from-url'?: string;
}

export const newVersionCommand: CommandModule<GlobalArgs, NewVersionArgs> = {
  command: 'new-version',
  describe: 'Scaffold the next version: from the current one (schema copy, identity up/down), or --from a database your migration tool already brought to it',
  builder: (y) =>
    y
      .option('from', { type: 'string', describe: 'Environment whose database is already at the new version (migrated with Flyway, Sqitch, your framework...): schema.sql is written from its catalog, up/down drafted from the changes' })
      .option('from-url', { type: 'string', describe: 'Connection URL of that database, instead of an environment' })
      .example('$0 new-version', 'mappings/v3 -> mappings/v4 with v3/schema.sql copied and identity mappings')
      .example('$0 new-version --from green', "v4/schema.sql from green's catalog, up.json/down.json drafted with every change named")
      .example('$0 new-version --mappings ../myapp/db/versions', "your own application's versions")
      .epilogue(
        'With --from, every table and column that changed is named (added, dropped, retyped, likely renames marked GUESS); ' +
          'what a developer must decide is listed in each file\'s "_todo", and `bluegreen check` refuses the mapping until that list is empty.',
      ) as never,
  handler: handle<NewVersionArgs>(async (argv, ctx) => {
    const dir = ctx.settings.mappingsDir;
    const rel = (f: string) => path.relative(process.cwd(), f) || f;
    const checkCmd = `bluegreen check${dir === path.resolve('mappings') ? '' : ` --mappings ${rel(dir)}`}`;
    if (argv.from !== undefined || argv['from-url'] !== undefined) {
      const env = ctx.env(argv.from ?? '--from-url', argv['from-url']);
      const label = `${env.name} (${redactUrl(env.url)})`;
      const client = await connect(env.url);
      let r;
      try {
        r = await scaffoldFromDatabase(client, dir, undefined, label);
      } finally {
        await client.end();
      }
      const todo = r.upTodo.length + r.downTodo.length;
      const next = [
        todo > 0 ? `decide the ${todo} open item(s) in "_todo" of ${rel(r.files[1]!)} and ${rel(r.files[2]!)}, then delete each line` : 'review the drafted mappings',
        `run \`${checkCmd}\`: it lists what is still open and round-trips fixtures through the new pair`,
      ];
      for (const d of r.drift) ctx.logger.warn(`written schema differs from the database: ${d}`);
      for (const s of r.skipped) ctx.logger.warn(`not written into schema.sql: ${s}`);
      ctx.output({ ...r, next }, () =>
        [
          `created v${r.version} in ${rel(r.dir)} from ${label}:`,
          ...r.files.map((f) => `  ${rel(f)}`),
          r.changes.length === 0 ? 'no table or column changed' : `changes from v${r.version - 1}:`,
          ...r.changes.map((c) => `  ${c.kind.padEnd(16)} ${c.table}${c.column ? `.${c.column}` : ''}  ${c.detail}`),
          'next:',
          ...next.map((n, i) => `  ${i + 1}. ${n}`),
        ].join('\n'),
      );
      return;
    }
    const r = await scaffoldVersion(dir);
    const prev = r.version - 1;
    const next = [
      `edit ${rel(r.files[0]!)}: the DDL of v${r.version}`,
      `describe what changed in ${rel(r.files[1]!)} (v${prev} -> v${r.version}) and ${rel(r.files[2]!)} (back), declaring in "loses" what cannot come back`,
      `run \`${checkCmd}\`: it validates both files and round-trips fixtures through them`,
    ];
    ctx.output({ version: r.version, dir: r.dir, files: r.files, next }, () =>
      [`created v${r.version} in ${rel(r.dir)}:`, ...r.files.map((f) => `  ${rel(f)}`), 'next:', ...next.map((n, i) => `  ${i + 1}. ${n}`)].join('\n'),
    );
  }),
};
