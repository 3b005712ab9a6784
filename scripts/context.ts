/**
 * What every command shares: global options, settings, the logger, and the one wrapper
 * that turns typed errors into one clear line and an exit code (SPEC.md).
 */
import type { Argv } from 'yargs';
import { BluegreenError, ExitCode } from '../src/errors.ts';
import { loadSettings, resolveEnvironment, type Environment, type Settings } from '../src/config.ts';
import { createLogger, type Logger, type LogFormat } from '../src/log.ts';
import { redactText } from '../src/redact.ts';
import { cancelStatements, parseTimeout, setSessionTimeouts } from '../src/db/connect.ts';

export interface GlobalArgs {
  mappings?: string;
  config?: string;
  'log-format'?: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  'connect-timeout'?: string;
  'lock-timeout'?: string;
  'statement-timeout'?: string;
}

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('mappings', { type: 'string', describe: 'Folder of versions (v1/schema.sql, v2/up.json, …)', defaultDescription: './mappings or config' })
    .option('config', { type: 'string', describe: 'Config file', defaultDescription: './bluegreen.config.json if present' })
    .option('log-format', { choices: ['text', 'json'] as const, describe: 'Log lines as text or one JSON object per line', defaultDescription: 'text on a terminal, json otherwise' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only warnings and errors' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Debug logging' })
    .option('json', { type: 'boolean', describe: 'Print the result as JSON on stdout' })
    .option('connect-timeout', { type: 'string', describe: 'Give up connecting after this long (seconds or e.g. 30s)', defaultDescription: '10' })
    .option('lock-timeout', { type: 'string', describe: 'Give up waiting for a table lock after this long, on both sides', defaultDescription: '30s' })
    .option('statement-timeout', { type: 'string', describe: 'Cancel any one statement running longer (0: no limit), on both sides', defaultDescription: '6h' });
}

/**
 * The timeout flags, checked before anything connects (exit 2 on a typo) and given to
 * every session; --lock-timeout is rewritten in milliseconds so a command that also
 * passes it to the server (sync) sends exactly what was checked.
 */
function applyTimeouts(argv: GlobalArgs): void {
  const connectMs = argv['connect-timeout'] !== undefined ? parseTimeout('connect-timeout', argv['connect-timeout'], false) : undefined;
  const lockMs = argv['lock-timeout'] !== undefined ? parseTimeout('lock-timeout', argv['lock-timeout']) : undefined;
  const statementMs = argv['statement-timeout'] !== undefined ? parseTimeout('statement-timeout', argv['statement-timeout']) : undefined;
  setSessionTimeouts({ connectMs, lockMs, statementMs });
  if (lockMs !== undefined) argv['lock-timeout'] = `${lockMs}ms`;
}

let interrupted: NodeJS.Signals | undefined;

/**
 * SIGINT/SIGTERM: cancel every server statement this process runs and close its sessions
 * (their transactions roll back, the target lock goes with them), then exit 1. A command
 * that handles the signal itself (cutover unfreezes its source) has its own listener and
 * keeps the signal; a second signal exits at once.
 */
function cancelOnSignal(argv: GlobalArgs): void {
  const json = argv['log-format'] === 'json' || (!argv['log-format'] && !process.stderr.isTTY);
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(ExitCode.failure);
    if (process.listenerCount(sig) > 1) return;
    interrupted = sig;
    process.exitCode = ExitCode.failure;
    void cancelStatements().then((n) => {
      const msg = `interrupted by ${sig}: ${n} server session(s) cancelled and closed; their open transaction rolled back`;
      const hint = 'rerun the command; nothing it had not committed was kept';
      process.stderr.write(
        json
          ? JSON.stringify({ time: new Date().toISOString(), level: 'error', msg, hint, error: 'Interrupted', exitCode: ExitCode.failure }) + '\n'
          : `error: ${msg}\n  next: ${hint}\n`,
      );
      process.exit(ExitCode.failure);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** What to do about a lock or statement timeout (the flags' defaults were too short, or something blocks). */
function timeoutHint(e: { code: string; message: string }): string | undefined {
  if (e.code === '55P03') return 'something held a table lock longer than --lock-timeout (default 30s): find it in pg_stat_activity, or raise --lock-timeout';
  if (e.code === '57014' && /statement timeout/.test(e.message)) return 'a statement ran longer than --statement-timeout (default 6h): raise it for tables this large, or find what blocks it';
  return undefined;
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
      applyTimeouts(argv as GlobalArgs);
      cancelOnSignal(argv as GlobalArgs);
      ctx = makeContext(argv as GlobalArgs);
      const code = await fn(argv, ctx);
      process.exitCode = code ?? ExitCode.ok;
    } catch (err) {
      // Interrupted: the signal handler reports and exits; a cancelled statement's error is its echo.
      if (interrupted) return;
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
            `error: the database refused an operation: ${e.message} (SQLSTATE ${e.code}${e.table ? `, table ${e.table}` : ''})${e.detail ? `\n  detail: ${e.detail}` : ''}\n  next: nothing was committed; ${timeoutHint(e) ?? 'rerun with --verbose for the full trace and report it if it persists'}\n`,
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
