/**
 * What every command shares: global options, settings, the logger, the endpoints, and the
 * one wrapper that prints the command's result (text, or the `--json` envelope) and turns
 * typed errors into one clear line and an exit code.
 *
 * Output rules (see README "Output for cron and for scripts"):
 * - log format `json` (explicit, or stdout/stderr not a terminal): every line the process
 *   writes is one JSON object with time, level, msg, runId, command and endpoints; the
 *   result is one such line on stdout carrying the envelope.
 * - `--json` on a terminal: the envelope, pretty-printed, on stdout.
 * - otherwise: the command's text rendering.
 */
import { randomBytes } from 'node:crypto';
import type { Argv } from 'yargs';
import { BluegreenError, ConnectionLostError, ExitCode, UsageError } from '../src/errors.ts';
import { loadSettings, resolveEnvironment, type Environment, type Settings } from '../src/config.ts';
import { createLogger, type Logger, type LogFormat } from '../src/log.ts';
import { redactText } from '../src/redact.ts';
import { envelope, type Envelope } from './envelope.ts';
import { cancelStatements, parseTimeout, sessionOf, setSessionTimeouts } from '../src/db/connect.ts';
import { checkConnectionUrl } from '../src/db/url.ts';
import { isUrl, resolveConninfo } from '../src/db/conninfo.ts';

export interface GlobalArgs {
  mappings?: string;
  config?: string;
  'log-format'?: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  _?: (string | number)[];
  'connect-timeout'?: string;
  'lock-timeout'?: string;
  'statement-timeout'?: string;
}

/** Names of the global options (listed after each command's own in its help). */
export const GLOBAL_OPTIONS = ['mappings', 'config', 'log-format', 'quiet', 'verbose', 'json', 'connect-timeout', 'lock-timeout', 'statement-timeout', 'help'];

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('mappings', { type: 'string', describe: 'Folder of versions (v1/schema.sql, v2/up.json, …)', defaultDescription: './mappings or config' })
    .option('config', { type: 'string', describe: 'Config file', defaultDescription: './bluegreen.config.json if present' })
    .option('log-format', {
      choices: ['text', 'json'] as const,
      describe: 'Text, or one JSON object per line for everything written (cron)',
      defaultDescription: 'text on a terminal, json otherwise ($BLUEGREEN_LOG_FORMAT)',
    })
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      describe: 'Errors only: nothing printed when the run succeeds or is skipped (exit 0, 75); exit 1, 2, 3 print their report and error. --json still prints the envelope',
    })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Debug logging' })
    .option('json', { type: 'boolean', describe: 'Print the result as the JSON envelope {command, formatVersion, ok, exitCode, durationMs, report}' })
    .option('connect-timeout', { type: 'string', describe: 'Give up connecting after this long (seconds or e.g. 30s)', defaultDescription: '10' })
    .option('lock-timeout', { type: 'string', describe: 'Give up waiting for a table lock after this long, on both sides', defaultDescription: '30s' })
    .option('statement-timeout', { type: 'string', describe: 'Cancel any one statement running longer (0: no limit), on both sides', defaultDescription: '6h' })
    .group(GLOBAL_OPTIONS, 'Global options:');
}

/**
 * The log format: the flag, else $BLUEGREEN_LOG_FORMAT, else text only when both stdout
 * and stderr are terminals (`>> log 2>&1` under cron gets JSON).
 */
export function logFormatOf(argv: { 'log-format'?: string }): LogFormat {
  const f = argv['log-format'] ?? process.env.BLUEGREEN_LOG_FORMAT;
  if (f === 'json' || f === 'text') return f;
  return process.stderr.isTTY && process.stdout.isTTY ? 'text' : 'json';
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
function cancelOnSignal(argv: GlobalArgs, fields: Record<string, unknown>, last: (failure: { code: string; message: string; hint: string }) => Promise<void>): void {
  const json = logFormatOf(argv) === 'json';
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(ExitCode.failure);
    if (process.listenerCount(sig) > 1) return;
    interrupted = sig;
    process.exitCode = ExitCode.failure;
    void cancelStatements().then(async (n) => {
      const msg = `interrupted by ${sig}: ${n} server session(s) cancelled and closed; their open transaction rolled back`;
      const hint = 'rerun the command; nothing it had not committed was kept';
      process.stderr.write(
        json
          ? JSON.stringify({ time: new Date().toISOString(), level: 'error', msg, ...fields, code: 'Interrupted', error: 'Interrupted', exitCode: ExitCode.failure, hint }) + '\n'
          : `error: ${msg}\n  next: ${hint}\n`,
      );
      // Its metrics file says it failed, and the envelope is the last line, as for any exit.
      await last({ code: 'Interrupted', message: msg, hint });
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
  from?: string;
  to?: string;
  'from-url'?: string;
  'to-url'?: string;
}

export function pairOptions<T>(y: Argv<T>, from = 'Source environment', to = 'Target environment') {
  return y
    .option('from', { type: 'string', describe: from, defaultDescription: 'blue, or named after --from-url' })
    .option('to', { type: 'string', describe: to, defaultDescription: 'green, or named after --to-url' })
    .option('from-url', { type: 'string', describe: 'Source URL or key=value conninfo, overriding the environment' })
    .option('to-url', { type: 'string', describe: 'Target URL or key=value conninfo, overriding the environment' });
}

/** The two endpoints of a pair command, as the library takes them. */
export function resolvePair(argv: PairArgs, ctx: Context) {
  const from = ctx.endpoint('from', argv.from, argv['from-url'], 'blue');
  const to = ctx.endpoint('to', argv.to, argv['to-url'], 'green');
  return {
    from: { name: from.name, url: from.url, version: from.version },
    to: { name: to.name, url: to.url, version: to.version },
  };
}

/**
 * The name of an endpoint given only by URL or conninfo: `host:port/database` (no user,
 * no password), so reports and the state kept on the target name the database itself.
 */
export function nameFromUrl(url: string): string {
  // The same one-line refusals as any other URL (several hosts, unescaped password).
  checkConnectionUrl(url, 'the endpoint', 'flag');
  if (!isUrl(url)) {
    // key=value conninfo or service=NAME: named after the database it reaches, as libpq
    // resolves it (its service's section and the PG* variables fill what it leaves out).
    const r = resolveConninfo(url);
    return `${r.host}:${r.port}/${r.dbname}`;
  }
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.searchParams.get('dbname') || '';
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}:${u.port || '5432'}/${db || (u.username ? decodeURIComponent(u.username) : 'postgres')}`;
  } catch {
    throw new UsageError(`${redactText(url)} is not a connection URL`, 'write it as postgres://user:password@host:port/database (percent-encode / # ? @ in the password)');
  }
}

export interface Context {
  settings: Settings;
  logger: Logger;
  /** This run's id, in every JSON line and in the envelope. */
  runId: string;
  /** Resolve an environment name (or --*-url override) to a database. */
  env(name: string, urlFlag?: string): Environment;
  /**
   * Resolve the command's source (`from`) or target (`to`): the name given, else one
   * derived from the URL flag, else `fallback`; recorded in every log line.
   */
  endpoint(role: 'from' | 'to' | 'env', name: string | undefined, urlFlag: string | undefined, fallback?: string): Environment;
  /**
   * The command's result: printed once it has finished (text, or the --json envelope).
   * `revealSecrets`: print passwords as they are (`env url`, which the DBA asked for).
   * `plain`: the text is a value for the shell (`psql "$(bluegreen env url blue)"`): printed
   * as it is even when stdout is not a terminal, unless --json or --log-format json.
   */
  output(result: unknown, text: () => string, opts?: { revealSecrets?: boolean; plain?: boolean }): void;
  /** Runs `fn` once the command has finished, failed or not (metrics files). */
  after(fn: () => Promise<void>): void;
  /** Set once the command has finished, before the `after` functions run: how it ended. */
  outcome?: { command: string; exitCode: number; durationMs: number; error?: string };
}

interface Pending {
  result: unknown;
  text: () => string;
  revealSecrets?: boolean;
  plain?: boolean;
}

function makeContext(argv: GlobalArgs, fields: Record<string, unknown>, pending: { out?: Pending; after: (() => Promise<void>)[] }): Context {
  const format = logFormatOf(argv);
  if (argv.quiet) {
    // Quiet means errors only: Node's process warnings (an ignored ~/.pgpass, a library's
    // deprecation), which bin/bluegreen.js prints in the log's format, go too.
    process.removeAllListeners('warning');
    process.on('warning', () => {});
  }
  const logger = createLogger({
    format,
    // Quiet is pg_dump's and psql's -q: errors only, warnings included in what it drops.
    level: argv.verbose ? 'debug' : argv.quiet ? 'error' : 'info',
    // A live line only on a terminal; JSON events in a JSON log; nothing in a text log file.
    progress: !argv.quiet && (format === 'json' || Boolean(process.stderr.isTTY)),
    fields,
  });
  const settings = loadSettings({ mappings: argv.mappings, configPath: argv.config });
  const env = (name: string, urlFlag?: string) => resolveEnvironment(settings, name, urlFlag);
  return {
    settings,
    logger,
    runId: String(fields.runId),
    env,
    endpoint(role, name, urlFlag, fallback) {
      const chosen = name ?? (urlFlag ? nameFromUrl(urlFlag) : fallback);
      if (chosen === undefined) {
        const urlName = role === 'env' ? 'url' : `${role}-url`;
        throw new UsageError(`name the ${role === 'from' ? 'source' : role === 'to' ? 'target' : 'environment'}: --${role} ENV or --${urlName} URL`, `e.g. --${role} ${role === 'from' ? 'blue' : 'green'}`);
      }
      const e = env(chosen, urlFlag);
      fields[role] = e.name;
      return e;
    },
    output(result, text, opts) {
      pending.out = { result, text, revealSecrets: opts?.revealSecrets, plain: opts?.plain };
    },
    after(fn) {
      pending.after.push(fn);
    },
  };
}

/** The command words of a parsed invocation (`sync`, `schema apply`, `env up`). */
function commandOf(argv: GlobalArgs & { action?: unknown }): string {
  const words = (argv._ ?? []).map(String);
  // A subcommand (`env up`) is in `_` already; an `<action>` positional is not.
  if (typeof argv.action === 'string' && words[words.length - 1] !== argv.action) words.push(argv.action);
  return words.join(' ') || 'bluegreen';
}

/** Commands whose next word is an action (`env up`, `schema apply`, `capture enable`). */
const WITH_ACTION = new Set(['env', 'schema', 'capture']);
/** Global options that take a value (skipped when finding the command words). */
const VALUE_OPTIONS = new Set(['--mappings', '--config', '--log-format', '--connect-timeout', '--lock-timeout', '--statement-timeout']);

/**
 * The command of raw arguments that did not parse (a usage error): the words before the
 * first option, global options and their values skipped; `bluegreen` when none.
 */
export function commandOfArgs(args: string[]): string {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) {
      if (words.length) break;
      if (VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    words.push(a);
    if (!WITH_ACTION.has(words[0]!) || words.length === 2) break;
  }
  return words.join(' ') || 'bluegreen';
}

/** The log level of a run's last line: error for 1 and 2, warn for 3 (differences), info for 0 and 75 (skipped). */
export function levelOf(exitCode: number): 'info' | 'warn' | 'error' {
  if (exitCode === ExitCode.ok || exitCode === ExitCode.locked) return 'info';
  if (exitCode === ExitCode.verifyDiff) return 'warn';
  return 'error';
}

/**
 * Prints the envelope as the run's last line: one JSON line (with time, level, msg and the
 * log fields) in a JSON log, pretty-printed with --json on a terminal, nothing in text
 * mode without --json. Shared by the handler, the signal path and usage errors.
 */
export function printEnvelope(env: Envelope, opts: { json: boolean; pretty: boolean; fields: Record<string, unknown>; revealSecrets?: boolean; errorFields?: Record<string, unknown> }): void {
  if (opts.json) {
    line(
      process.stdout,
      JSON.stringify({
        time: new Date().toISOString(),
        level: levelOf(env.exitCode),
        msg: `${env.command} ${env.ok ? 'done' : 'finished'} (exit ${env.exitCode})`,
        ...opts.fields,
        // Like every error line of the log, a failed run's last line names its class and what to do.
        ...(env.error ? { code: env.error.code, hint: env.error.hint, ...opts.errorFields } : {}),
        ...env,
      }),
      opts.revealSecrets,
    );
  } else if (opts.pretty) {
    line(process.stdout, JSON.stringify(env, null, 2), opts.revealSecrets);
  }
}

/** Writes one JSON line or text to a stream, passwords masked unless asked for. */
function line(stream: NodeJS.WriteStream, text: string, revealSecrets = false): void {
  stream.write((revealSecrets ? text : redactText(text)) + '\n');
}

/**
 * Runs a command handler. Expected failures (BluegreenError, a database's refusal, a
 * session lost under the run) print one line — what went wrong, on which side, and what
 * to do next — and set the exit code; anything else is a bug and keeps its stack so it
 * can be reported. The result is printed after the exit code is known, so the
 * envelope says it.
 */
export function handle<A>(fn: (argv: A, ctx: Context) => Promise<number | void>) {
  return async (argv: A): Promise<void> => {
    const g = argv as GlobalArgs;
    const started = Date.now();
    const command = commandOf(g as GlobalArgs & { action?: unknown });
    // `sync --dry-run` prints a plan, `sync --repair` a repair: the envelope says which
    // (its report follows plan.schema.json or sync-repair.schema.json).
    const flags = g as { 'dry-run'?: unknown; repair?: unknown };
    const variant = command !== 'sync' ? undefined : flags['dry-run'] ? ('dryRun' as const) : flags.repair ? ('repair' as const) : undefined;
    const fields: Record<string, unknown> = { runId: randomBytes(6).toString('hex'), command };
    const json = logFormatOf(g) === 'json';
    const pending: { out?: Pending; after: (() => Promise<void>)[] } = { after: [] };
    let code: number = ExitCode.ok;
    let failure: { code: string; message: string; hint?: string } | undefined;
    let errorLine: (() => void) | undefined;
    // The error's side and SQLSTATE, repeated on the last line (a reader of the last line alone has them).
    let errorFields: Record<string, unknown> | undefined;
    let ctxRef: Context | undefined;
    // An interrupted run: what runs after the command (a metrics file) gets 15 s, then the envelope.
    const last = async (f: { code: string; message: string; hint: string }) => {
      if (ctxRef) {
        ctxRef.outcome = { command, exitCode: ExitCode.failure, durationMs: Date.now() - started, error: f.message };
        for (const after of pending.after) {
          await Promise.race([after().catch(() => {}), new Promise((r) => setTimeout(r, 15_000).unref())]);
        }
      }
      printEnvelope(envelope(command, ExitCode.failure, Date.now() - started, pending.out?.result ?? null, f, variant), { json, pretty: Boolean(g.json), fields });
    };
    try {
      applyTimeouts(g);
      cancelOnSignal(g, fields, last);
      const ctx = makeContext(g, fields, pending);
      ctxRef = ctx;
      let failed = false;
      let thrown: unknown;
      try {
        code = (await fn(argv, ctx)) ?? ExitCode.ok;
      } catch (err) {
        failed = true;
        thrown = err;
      }
      // Interrupted: the signal handler reports and exits; a cancelled statement's error is its echo.
      if (interrupted) return;
      // How the command ended, for what runs after it (a metrics file says a failed run failed).
      ctx.outcome = {
        command,
        exitCode: failed ? describeError(thrown, false).exitCode : code,
        durationMs: Date.now() - started,
        error: failed ? (thrown as Error)?.message : undefined,
      };
      // The command's own failure is what gets reported; a follow-up's only when it alone failed.
      for (const f of pending.after) await f().catch((err) => {
        if (!failed) throw err;
      });
      if (failed) throw thrown;
    } catch (err) {
      if (interrupted) return;
      const described = describeError(err, Boolean(g.verbose));
      code = described.exitCode;
      failure = { code: described.code, message: described.message, hint: described.hint };
      errorFields = { side: described.side, sqlstate: described.sqlstate };
      errorLine = () => {
        if (json) {
          line(
            process.stderr,
            JSON.stringify({
              time: new Date().toISOString(),
              // A skipped run (exit 75) is normal under cron: not an error.
              level: levelOf(code),
              msg: described.message,
              ...fields,
              code: described.code,
              error: described.code,
              exitCode: code,
              hint: described.hint,
              side: described.side,
              sqlstate: described.sqlstate,
              detail: described.detail,
              stack: described.stack,
            }),
          );
        } else {
          process.stderr.write(redactText(described.text) + '\n');
        }
      };
    }
    const env: Envelope = envelope(command, code, Date.now() - started, pending.out?.result ?? null, failure, variant);
    const reveal = pending.out?.revealSecrets;
    // --quiet: a run that did its job (0) or was skipped (75, normal under cron) says
    // nothing, unless what it prints was asked for (--json's envelope, env url's value).
    const silent = Boolean(g.quiet) && (code === ExitCode.ok || code === ExitCode.locked);
    if (silent) errorLine = undefined;
    if (pending.out?.plain && !g.json && !g['log-format'] && !failure) {
      // A value for the shell (`psql "$(bluegreen env url blue)"`): the value alone.
      line(process.stdout, pending.out.text(), reveal);
    } else if (json || g.json) {
      // The error first, then the envelope: the run's last line, whatever its exit.
      errorLine?.();
      errorLine = undefined;
      if (!silent || g.json) printEnvelope(env, { json, pretty: Boolean(g.json), fields, revealSecrets: reveal, errorFields });
    } else if (pending.out && !silent) {
      // For people: the report, then what went wrong under it.
      line(process.stdout, pending.out.text(), reveal);
    }
    errorLine?.();
    process.exitCode = code;
  };
}

interface DescribedError {
  exitCode: number;
  /** Error class name (`LockedError`, `ConnectionLostError`), `DatabaseError`, or `Bug`. */
  code: string;
  message: string;
  hint?: string;
  /** The environment whose session failed (blue, green, …), when known. */
  side?: string;
  /** PostgreSQL's error code, for a database error. */
  sqlstate?: string;
  detail?: string;
  stack?: string;
  /** The text-mode rendering. */
  text: string;
}

/** SQLSTATEs with which a server ends a session (the session is gone, not the statement refused). */
const SESSION_ENDED: Record<string, string> = {
  '57P01': 'admin_shutdown',
  '57P02': 'crash_shutdown',
  '57P03': 'cannot_connect_now',
  '57P05': 'idle_session_timeout',
  '25P03': 'idle_in_transaction_session_timeout',
  '08000': 'connection_exception',
  '08003': 'connection_does_not_exist',
  '08006': 'connection_failure',
};

/** How Node and pg say a connection closed under a query, with no word from the server. */
const SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'ENOTCONN']);
const CLOSED = /^(Connection terminated|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)/;

type PgError = { message: string; code: string; severity: string; table?: string; detail?: string };

function isDatabaseError(err: unknown): err is PgError {
  return Boolean(err && typeof err === 'object' && 'severity' in err && 'code' in err);
}

/**
 * A session lost under the run (terminated, restarted, failed over, the connection reset):
 * a runtime failure naming the side and, when the server said why, its SQLSTATE. Never a
 * bug, and never mistaken for a refused statement.
 */
function lostSession(err: unknown): ConnectionLostError | undefined {
  if (err instanceof ConnectionLostError) return err;
  const s = sessionOf(err);
  const side = s?.side;
  const server = isDatabaseError(err) ? err : s?.ended;
  const where = side ? ` ${side}` : ' a database';
  const rerun = `rerun once${side ? ` ${side}` : ' it'} accepts connections again (a run's writes commit together or not at all)`;
  if (server?.code && SESSION_ENDED[server.code]) {
    return new ConnectionLostError(side ?? 'database', `lost the session on${where}: ${server.message} (SQLSTATE ${server.code} ${SESSION_ENDED[server.code]})`, `the server ended it (pg_terminate_backend, a restart, a failover); ${rerun}`, server.code);
  }
  if (isDatabaseError(err)) return undefined;
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e && ((typeof e.code === 'string' && SOCKET_ERRORS.has(e.code)) || (typeof e.message === 'string' && CLOSED.test(e.message)))) {
    return new ConnectionLostError(side ?? 'database', `lost the connection to${where}: ${String(e.message)} (no SQLSTATE: it closed without a word from the server)`, `check${where} and the network path to it; ${rerun}`);
  }
  return undefined;
}

function describeError(err: unknown, verbose: boolean): DescribedError {
  // --verbose adds the detail and the stack; it never changes the classification or the exit code.
  const stack = verbose ? ((err as Error)?.stack ?? String(err)) : undefined;
  const trace = stack ? `\n  trace: ${stack.replace(/\n/g, '\n  ')}` : '';
  const known = lostSession(err) ?? (err instanceof BluegreenError ? err : undefined);
  if (known) {
    const skipped = known.exitCode === ExitCode.locked;
    const side = known instanceof ConnectionLostError ? known.side : undefined;
    const sqlstate = known instanceof ConnectionLostError ? known.sqlstate : undefined;
    const detail = verbose && known !== err ? (err as Error)?.message : undefined;
    return {
      exitCode: known.exitCode,
      code: known.name,
      message: known.message,
      hint: known.hint,
      side,
      sqlstate,
      detail,
      stack,
      text: `${skipped ? 'skipped: ' : 'error: '}${known.message}${detail ? `\n  detail: ${detail}` : ''}${known.hint ? `\n  next: ${known.hint}` : ''}${trace}`,
    };
  }
  if (isDatabaseError(err)) {
    // A server-side error we did not anticipate: say what the server said, and where.
    const e = err;
    const side = sessionOf(err)?.side;
    const message = `the database refused an operation${side ? ` on ${side}` : ''}: ${e.message} (SQLSTATE ${e.code}${e.table ? `, table ${e.table}` : ''})`;
    const hint = `nothing was committed; ${timeoutHint(e) ?? 'rerun with --verbose for the full trace and report it if it persists'}`;
    return {
      exitCode: ExitCode.failure,
      code: 'DatabaseError',
      message,
      hint,
      side,
      sqlstate: e.code,
      detail: e.detail,
      stack,
      text: `error: ${message}${e.detail ? `\n  detail: ${e.detail}` : ''}\n  next: ${hint}${trace}`,
    };
  }
  const bugStack = (err as Error)?.stack ?? String(err);
  return {
    exitCode: ExitCode.failure,
    code: 'Bug',
    message: `unexpected failure (this is a bug, please report it): ${(err as Error)?.message ?? String(err)}`,
    hint: 'report it with the stack trace',
    stack: bugStack,
    text: `bluegreen: unexpected failure (this is a bug, please report it):\n${bugStack}`,
  };
}
