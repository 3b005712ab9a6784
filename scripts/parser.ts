/**
 * bluegreen's command line as one yargs parser: every command, the global options, help
 * and shell completion. Strict: unknown options and commands are usage errors (exit 2),
 * never silently ignored. scripts/cli.ts runs it; tests build it to check that every
 * example in the help parses.
 */
import { randomBytes } from 'node:crypto';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { ExitCode } from '../src/errors.ts';
import { redactText } from '../src/redact.ts';
import { commandOfArgs, GLOBAL_OPTIONS, globalOptions, logFormatOf, printEnvelope, type GlobalArgs } from './context.ts';
import { envelope } from './envelope.ts';
import { topLevelHelp, withPasteableHelp } from './help.ts';
import { versionFlag } from './options.ts';
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

/** Every command, in the order a deployment uses them (the order `bluegreen --help` lists them). */
export const COMMANDS: CommandModule<any, any>[] = [
  envCommand,
  schemaCommand,
  seedCommand,
  planCommand,
  syncCommand,
  verifyCommand,
  statusCommand,
  cutoverCommand,
  unfreezeCommand,
  directionCommand,
  captureCommand,
  exportCommand,
  importCommand,
  convertCommand,
  checkCommand,
  newVersionCommand,
];

/**
 * The width help is laid out for: the terminal's, else $COLUMNS (help piped into `less`
 * or a file), else 100; at most 110, so descriptions stay readable on a wide screen.
 * Examples are never wrapped, whatever it is (scripts/help.ts).
 */
export function helpWidth(): number {
  const columns = process.stdout.columns || Number(process.env.COLUMNS) || 100;
  return Math.max(40, Math.min(110, columns));
}

/**
 * A usage error (yargs' own validation, a coerce check, an unknown flag): one line and a
 * hint on stderr (a JSON line in a JSON log), the envelope on stdout, exit 2.
 */
function reportUsageError(args: string[], msg: string): never {
  const hint = 'see `bluegreen --help` or `bluegreen <command> --help`';
  const command = commandOfArgs(args);
  const json = logFormatOf(parsedLogFormat(args)) === 'json';
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
}

/** --log-format as written on the command line (the parse itself may have failed). */
function parsedLogFormat(args: string[]): { 'log-format'?: string } {
  const i = args.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  if (i === -1) return {};
  return { 'log-format': args[i]!.includes('=') ? args[i]!.split('=')[1] : args[i + 1] };
}

/**
 * The command line as the parser takes it, or `version` when it asks for the tool's
 * version (scripts/options.ts versionFlag: `--version N` on schema apply, export and
 * import becomes `--schema-version N`). A completion request is taken as it is: it
 * carries the words typed so far, `--version` perhaps among them.
 */
export function commandLine(given: string[]): 'version' | string[] {
  if (given.includes('--get-yargs-completions')) return given;
  const v = versionFlag(given, commandOfArgs(given));
  return v.print ? 'version' : v.args;
}

/** `bluegreen completion`: yargs' completion script, as a command with its own help. */
function completionCommand(parser: () => Argv<GlobalArgs>): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'completion',
    describe: 'Print a shell completion script (bash, or zsh when $SHELL is zsh) for commands, options and their choices',
    builder: (y) =>
      y
        .example('source <(bluegreen completion)', 'completion in this shell (bluegreen on PATH, e.g. through npm link or npm install -g)')
        .example('bluegreen completion >> ~/.bashrc', 'every new bash (~/.zshrc for zsh)')
        .epilogue('The script asks `bluegreen --get-yargs-completions` for the words that fit where the cursor is.') as never,
    handler: () => {
      // The typings lag yargs 18, which takes the script name and the command's name.
      (parser() as unknown as { showCompletionScript($0: string, cmd: string): void }).showCompletionScript('bluegreen', 'completion');
    },
  };
}

export interface ParserOptions {
  /** Help width (default: {@link helpWidth}). */
  width?: number;
  /** What a usage error does (default: print it and exit 2). */
  onUsageError?: (msg: string) => never;
}

/** The whole command line, ready for `.parseAsync(args, {}, callback)`. */
export function buildParser(args: string[], opts: ParserOptions = {}): Argv<GlobalArgs> {
  const onUsageError = opts.onUsageError ?? ((msg: string) => reportUsageError(args, msg));
  topLevelHelp(
    [
      ['$0 env up', 'two local clusters, blue and green, under .bluegreen/'],
      ['$0 sync --from blue --to green', 'keep green current (cron, every few minutes)'],
      ['$0 cutover --from blue --to green', 'switch: freeze blue, final sync, verify'],
      ['$0 sync --from green --to blue', 'after a cutover, keep blue current for a rollback'],
      ['$0 cutover --from green --to blue', 'roll back'],
    ],
    'Environments come from --from-url/--to-url, bluegreen.config.json, BLUE_URL/GREEN_URL, ' +
      'or the local clusters started by `bluegreen env up`.\n' +
      'Exit codes: 0 ok, 1 failure, 2 invalid input, 3 verify found differences, 75 another run holds the lock.\n' +
      '`bluegreen <command> --help` shows a command\'s options and examples; `bluegreen --version` the tool\'s version.',
  );
  let cli: Argv<GlobalArgs>;
  const commands = [...COMMANDS, completionCommand(() => cli)];
  cli = globalOptions(yargs(args)).scriptName('bluegreen').usage(
    // Prose only: a command quoted here could be wrapped in the middle (see the epilogue).
    '$0 <command> [options]\n\n' +
      'Blue/green deployments for PostgreSQL apps whose schema changes between versions: export blue at vN, ' +
      'convert through mappings/, import into green at vN+1, verify.',
  ) as Argv<GlobalArgs>;
  for (const c of commands) cli = cli.command(withPasteableHelp(c, GLOBAL_OPTIONS)) as Argv<GlobalArgs>;
  return (
    cli
      // `--version` is decided before parsing (scripts/options.ts versionFlag): alone it is
      // the tool's version, and `--version N` the schema version of schema apply, export, import.
      .version(false)
      .help()
      .alias('help', 'h')
      .demandCommand(1, 'name a command (bluegreen --help lists them)')
      .strict()
      .recommendCommands()
      .wrap(opts.width ?? helpWidth())
      .fail((msg, err) => {
        // yargs' own validation errors (including our coerce checks) are usage errors.
        if (err && err.name !== 'YError') throw err;
        return onUsageError(err ? err.message : msg);
      })
  );
}
