/**
 * Typed errors. Every expected failure is one class carrying the fields a DBA needs and
 * the exit code the README promises; the CLI wrapper prints `message` (one line, with what to do
 * next in `hint`) and exits with `exitCode`. Unexpected errors keep their stack.
 */

/** Exit codes promised to users (README: 0, 1, 2, 3, 75). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  invalid: 2,
  verifyDiff: 3,
  locked: 75,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class BluegreenError extends Error {
  /** Process exit code the CLI uses for this failure. */
  abstract readonly exitCode: ExitCode;
  /** What the user should do next; printed after the message. */
  readonly hint?: string;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** Bad input or usage: config, mapping, dump, version mismatch (exit 2). */
export class InvalidInputError extends BluegreenError {
  readonly exitCode = ExitCode.invalid;
}

/** One problem found while validating a file against its JSON Schema or its semantics. */
export interface ValidationProblem {
  /** File the problem is in. */
  file: string;
  /** JSON pointer (or dotted path) inside the file. */
  path: string;
  /** What is wrong. */
  message: string;
  /** How to fix it. */
  hint?: string;
}

/** A file failed validation; carries every problem at once. */
export class ValidationError extends InvalidInputError {
  constructor(
    readonly what: string,
    readonly problems: ValidationProblem[],
  ) {
    super(
      `${what}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems
          .map((p) => `  ${p.file}${p.path ? ` at ${p.path}` : ''}: ${p.message}${p.hint ? ` (hint: ${p.hint})` : ''}`)
          .join('\n'),
    );
  }
}

export class ConfigError extends InvalidInputError {}

export class UsageError extends InvalidInputError {}

/** A dump file's sha256 differs from its manifest. */
export class ChecksumMismatchError extends InvalidInputError {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `dump file ${file} is corrupt: sha256 ${actual.slice(0, 12)}… but the manifest says ${expected.slice(0, 12)}…`,
      'the dump was altered or truncated after export; export it again',
    );
  }
}

/** The dump is not readable as a bluegreen dump. */
export class DumpError extends InvalidInputError {}

/** A database's schema matches no known version, or not the version expected. */
export class VersionMismatchError extends InvalidInputError {
  constructor(
    message: string,
    hint?: string,
    /** Human-readable drift report lines, when detection failed. */
    readonly drift: string[] = [],
  ) {
    super(message, hint);
  }
}

/** The target already holds data and the user did not ask to replace it. */
export class TargetNotEmptyError extends InvalidInputError {
  constructor(readonly tables: string[]) {
    super(
      `target is not empty: ${tables.join(', ')} already hold rows`,
      'pass --truncate to replace its contents, or import into an empty database',
    );
  }
}

/** A table cannot be synced safely (no key, unmapped...). */
export class TableError extends InvalidInputError {
  constructor(
    readonly table: string,
    message: string,
    hint?: string,
  ) {
    super(`table ${table}: ${message}`, hint);
  }
}

/** Another run holds the lock for this pair (exit 75). */
export class LockedError extends BluegreenError {
  readonly exitCode = ExitCode.locked;
  constructor(
    readonly lockName: string,
    readonly holder: string,
    hint = 'this is normal under cron; the next run will catch up',
  ) {
    super(`another bluegreen run holds the lock for ${lockName} (${holder}); skipped`, hint);
  }
}

/** A database could not be reached or an operation failed at runtime (exit 1). */
export class RuntimeFailure extends BluegreenError {
  readonly exitCode = ExitCode.failure;
}

/** Verify found differences (exit 3). */
export class VerifyDifferenceError extends BluegreenError {
  readonly exitCode = ExitCode.verifyDiff;
}

/**
 * A table marked `"reload": "append"` turned out not to be append-only: rows the target
 * got from the source are gone or changed there (exit 3, nothing written).
 */
export class NotAppendOnlyError extends BluegreenError {
  readonly exitCode = ExitCode.verifyDiff;
  constructor(
    readonly table: string,
    /** Target rows the source no longer holds as they were. */
    readonly rows: number,
    /** One of them, as row text (cut at 80 characters). */
    readonly sample: string,
    /** Whether only the re-read window was compared (an incremental run). */
    readonly window: boolean,
  ) {
    super(
      `table ${table} is not append-only: ${rows} row(s) on the target are gone or changed on the source${window ? ' (among rows re-read since the last watermark)' : ''}, e.g. ${sample}; nothing was written`,
      `if the application updates or deletes rows of ${table}, set "reload": "full" for it in the mapping; otherwise find what changed them, then sync again`,
    );
  }
}

/**
 * A session was lost mid-run (exit 1): the server ended it (pg_terminate_backend, a
 * restart, a failover: `sqlstate` says which) or the connection closed or went silent.
 * Not a bug: the network and the servers are outside bluegreen. `side` names the
 * environment (blue, green, …) whose session it was, so the DBA knows where to look.
 */
export class ConnectionLostError extends RuntimeFailure {
  constructor(
    readonly side: string,
    message: string,
    hint: string,
    /** PostgreSQL's error code, when the server said why before closing (57P01, …). */
    readonly sqlstate?: string,
  ) {
    super(message, hint);
  }
}

/**
 * A connection on which nothing moved for longer than the client-side bound while the
 * server had to answer or take our bytes (src/db/watchdog.ts): a proxy or network that
 * stopped forwarding with the sockets still open. The server's own statement_timeout
 * cannot fire while its backend waits on us, so the client gives up.
 */
export class StalledConnectionError extends ConnectionLostError {
  constructor(side: string, what: string, silentMs: number, bound: string) {
    super(
      side,
      `lost the connection to ${side}: nothing moved for ${Math.round(silentMs / 1000)} s while ${what} (${bound}); the network or a proxy in between stopped forwarding`,
      `nothing was committed; check the network path to ${side} (a proxy, a load balancer, a firewall), then rerun`,
    );
  }
}
