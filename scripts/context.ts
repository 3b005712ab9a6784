/**
 * What every command shares: global options, settings, the logger, and the one wrapper
 * that turns typed errors into one clear line and an exit code (SPEC.md).
 */
import type { Argv } from 'yargs';
import { BluegreenError, ExitCode } from '../src/errors.ts';
import { loadSettings, resolveEnvironment, type Environment, type Settings } from '../src/config.ts';
import { createLogger, type Logger, type LogFormat } from '../src/log.ts';
import { redactText } from '../src/redact.ts';

export interface GlobalArgs {
  mappings?: string;
  config?: string;
  'log-format'?: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
}

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('mappings', { type: 'string', describe: 'Folder of versions (v1/schema.sql, v2/up.json, …)', defaultDescription: './mappings or config' })
    .option('config', { type: 'string', describe: 'Config file', defaultDescription: './bluegreen.config.json if present' })
    .option('log-format', { choices: ['text', 'json'] as const, describe: 'Log lines as text or one JSON object per line', defaultDescription: 'text on a terminal, json otherwise' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only warnings and errors' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Debug logging' })
    .option('json', { type: 'boolean', describe: 'Print the result as JSON on stdout' });
}

/** --from/--to and their URL overrides, shared by every command that reads one side and writes the other. */
export interface PairArgs {
  from: string;
  to: string;
  'from-url'?: string;
  'to-url'?: string;
}

export function pairOptions<T>(y: Argv<T>, from = 'Source environment', to = 'Target environment') {
  return y
    .option('from', { type: 'string', default: 'blue', describe: from })
    .option('to', { type: 'string', default: 'green', describe: to })
    .option('from-url', { type: 'string', describe: 'Source URL, overriding the environment' })
    .option('to-url', { type: 'string', describe: 'Target URL, overriding the environment' });
}

/** The two endpoints of a pair command, as the library takes them. */
export function resolvePair(argv: PairArgs, ctx: Context) {
  const from = ctx.env(argv.from, argv['from-url']);
  const to = ctx.env(argv.to, argv['to-url']);
  return {
    from: { name: from.name, url: from.url, version: from.version },
    to: { name: to.name, url: to.url, version: to.version },
  };
}

export interface Context {
  settings: Settings;
  logger: Logger;
  /** Resolve an environment name (or --*-url override) to a database. */
  env(name: string, urlFlag?: string): Environment;
  /** Print a command's result: JSON with --json, else the text renderer. */
  output(result: unknown, text: () => string): void;
}

export function makeContext(argv: GlobalArgs): Context {
  const tty = Boolean(process.stderr.isTTY);
  const format: LogFormat = argv['log-format'] ?? (tty ? 'text' : 'json');
  const logger = createLogger({
    format,
    level: argv.verbose ? 'debug' : argv.quiet ? 'warn' : 'info',
    progress: tty && !argv.quiet,
  });
  const settings = loadSettings({ mappings: argv.mappings, configPath: argv.config });
  return {
    settings,
    logger,
    env: (name, urlFlag) => resolveEnvironment(settings, name, urlFlag),
    output(result, text) {
      if (argv.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else process.stdout.write(text() + '\n');
    },
  };
}

/**
 * Runs a command handler. Expected failures (BluegreenError) print one line — what went
 * wrong and what to do next — and set the exit code; anything else is a bug and keeps its
 * stack so it can be reported.
 */
export function handle<A>(fn: (argv: A, ctx: Context) => Promise<number | void>) {
  return async (argv: A): Promise<void> => {
    let ctx: Context | undefined;
    try {
      ctx = makeContext(argv as GlobalArgs);
      const code = await fn(argv, ctx);
      process.exitCode = code ?? ExitCode.ok;
    } catch (err) {
      const json = (argv as GlobalArgs)['log-format'] === 'json' || (!(argv as GlobalArgs)['log-format'] && !process.stderr.isTTY);
      if (err instanceof BluegreenError) {
        if (json) {
          process.stderr.write(
            redactText(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: err.message, hint: err.hint, error: err.name, exitCode: err.exitCode })) + '\n',
          );
        } else {
          process.stderr.write(redactText(`error: ${err.message}\n${err.hint ? `  next: ${err.hint}\n` : ''}`));
        }
        process.exitCode = err.exitCode;
      } else if (err && typeof err === 'object' && 'severity' in err && 'code' in err && !(argv as GlobalArgs).verbose) {
        // A server-side error we did not anticipate: say what the server said, not a JS stack.
        const e = err as unknown as { message: string; code: string; table?: string; detail?: string };
        process.stderr.write(
          redactText(
            `error: the database refused an operation: ${e.message} (SQLSTATE ${e.code}${e.table ? `, table ${e.table}` : ''})${e.detail ? `\n  detail: ${e.detail}` : ''}\n  next: nothing was committed; rerun with --verbose for the full trace and report it if it persists\n`,
          ),
        );
        process.exitCode = ExitCode.failure;
      } else {
        process.stderr.write(redactText(`bluegreen: unexpected failure (this is a bug, please report it):\n${(err as Error)?.stack ?? String(err)}\n`));
        process.exitCode = ExitCode.failure;
      }
    }
  };
}
