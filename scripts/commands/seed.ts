import type { CommandModule } from 'yargs';
import { connect } from '../../src/db/connect.ts';
import { detectVersion, VersionCatalogs } from '../../src/db/catalog.ts';
import { InvalidInputError, VersionMismatchError } from '../../src/errors.ts';
import { nonEmptyTables } from '../../src/dump/import.ts';
import { seedV1, V1_TABLES } from '../../fixtures/generate.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';

interface SeedArgs extends GlobalArgs {
  to?: string;
  'to-url'?: string;
  rows: number;
  seed: number;
}

export const seedCommand: CommandModule<GlobalArgs, SeedArgs> = {
  command: 'seed',
  describe: 'Fill an empty v1 sample database with deterministic, hostile test data',
  builder: (y) =>
    y
      .option('to', { type: 'string', defaultDescription: 'blue, or named after --to-url', describe: 'Environment (must be at v1 of the sample app, tables empty)' })
      .option('to-url', { type: 'string', describe: 'Connection URL, overriding the environment' })
      .option('rows', { type: 'string', default: 1000, coerce: numberCoerce('rows', { integer: true, min: 0 }), describe: 'Users to generate (user_roles ≈ 1.5x, user_settings ≈ 1x)' })
      .option('seed', { type: 'string', default: 1, coerce: numberCoerce('seed', { integer: true }), describe: 'PRNG seed: the same seed gives the same bytes' })
      .example('$0 seed --to blue --rows 1000000', 'a realistic 1M-user data set full of awkward values') as never,
  handler: handle<SeedArgs>(async (argv, ctx) => {
    const env = ctx.endpoint('to', argv.to, argv['to-url'], 'blue');
    const client = await connect(env.url, { label: env.name, applicationName: 'bluegreen seed' });
    try {
      const d = await detectVersion(client, new VersionCatalogs(ctx.settings.mappingsDir, client), env.name);
      if (d.version !== 1) {
        throw new VersionMismatchError(
          `seed fills the sample app's v1 schema, but ${env.name} is ${d.version === 'empty' ? 'empty' : `at v${d.version}`}`,
          `bluegreen schema apply --to ${env.name} --schema-version 1 on an empty database first`,
        );
      }
      // Refused before the first write: seeding on top of rows would fail halfway on a key.
      const occupied = await nonEmptyTables(client, [...V1_TABLES]);
      if (occupied.length > 0) {
        throw new InvalidInputError(
          `seed fills an empty database, but ${env.name} already has rows in ${occupied.join(', ')}; nothing was written`,
          `seed a fresh database (bluegreen schema apply --to ${env.name} --schema-version 1 on an empty one), or empty those tables yourself first`,
        );
      }
      let current: string | undefined;
      const r = await seedV1(client, { users: argv.rows, seed: argv.seed, onProgress: (t, n) => {
          if (current && current !== t) ctx.logger.progressDone(current);
          current = t;
          ctx.logger.progress(t, n, t === 'users' ? argv.rows : undefined, { phase: 'seed' });
        },
      });
      for (const t of V1_TABLES) ctx.logger.progressDone(t);
      ctx.output(r, () => `seeded ${env.name}: ${Object.entries(r.rows).map(([t, n]) => `${t} ${n}`).join(', ')} in ${r.seconds.toFixed(1)} s`);
    } finally {
      await client.end().catch(() => {});
    }
  }),
};
