/**
 * What a cutover takes and what it returns: its options, its report and the error that
 * carries the report when the cutover did not happen. Apart from src/cutover/cutover.ts so
 * that the steps (src/cutover/steps.ts, src/cutover/guardrails.ts) and the composer share
 * them without importing each other.
 */
import type { Logger } from '../log.ts';
import type { Endpoint, SyncReport } from '../sync/sync.ts';
import { BluegreenError, ExitCode } from '../errors.ts';

export interface CutoverOptions {
  from: Endpoint;
  to: Endpoint;
  mappingsDir: string;
  logger: Logger;
  /** Refuse when the target's watermarks lag the source by more than this (seconds). */
  maxLagSeconds?: number;
  /** Whole cutover budget after the guardrails, in milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Shell command run after success (flip a load balancer, a DNS name, …). */
  switchCommand?: string;
  /** Skip the lag and last-verify guardrails (versions and mappings are always checked). */
  force?: boolean;
  /**
   * Stops the cutover like the timeout does (Ctrl-C, SIGTERM): own statements cancelled,
   * the target rolled back (or frozen again if it had committed), the source unfrozen.
   */
  signal?: AbortSignal;
  /** As sync's: extra margin subtracted from watermark lower bounds (PostgreSQL interval). */
  lookback?: string;
  /** As sync's: give up waiting for target table locks after this long (default: 15 s or what is left of the timeout). */
  lockTimeout?: string;
  /** The final sync re-reads every row, not only what changed since the last sync. */
  full?: boolean;
  /**
   * The check while frozen: `changed` (default) checks, inside the final sync's
   * transaction, the rows it read (every row was verified before the freeze); `full`
   * also compares every row against the final sync's snapshot, after its commit (a
   * freeze as long as the database is large).
   */
  verify?: 'full' | 'changed';
}

export interface Guardrail {
  /** What is checked, e.g. `lag`, `source serving`, `delete capture`. */
  name: string;
  /** False refuses the cutover (a warning is ok: true). */
  ok: boolean;
  /** The current value, or what is wrong and what to run. */
  detail: string;
  /** Passes but deserves the DBA's attention before freezing (it never refuses). */
  warning?: boolean;
}

/** How the final sync, inside the freeze, found the source's deletes. */
export interface FrozenDeletes {
  /** Tables whose deletes came from the source's capture trigger (cost follows the change). */
  captured: string[];
  /** Tables whose key sets were compared by key buckets (cost follows the table). */
  reconciled: string[];
}

export interface CutoverReport {
  from: string;
  to: string;
  fromVersion?: number;
  toVersion?: number;
  guardrails: Guardrail[];
  ok: boolean;
  /** What happened, in one line. */
  outcome: string;
  frozenAt?: string;
  /**
   * How long application writes on the source were refused or held: from the freeze
   * taking its locks to the target committing the final sync (it is writable from then),
   * or to the source being unfrozen again when the cutover failed.
   */
  freezeMs?: number;
  /**
   * Lock attempts the freeze took: each is bounded below the server's deadlock_timeout and
   * released when a writer is in the way, so writers never deadlock with it (1: none was).
   */
  freezeAttempts?: number;
  /** Where the final sync's deletes came from while writes were refused, per target table. */
  frozenDeletes?: FrozenDeletes;
  /** The sync with a full verify run before the freeze, when the last clean one was older than the last sync. */
  verifiedBeforeFreeze?: SyncReport;
  /** The incremental sync run just before the freeze when no verify sync ran then: the freeze carries only what came after it. */
  caughtUpBeforeFreeze?: SyncReport;
  /** Watermarks of the reverse direction (target -> source) seeded at cutover, per table. */
  reverseWatermarks?: Record<string, string>;
  sync?: SyncReport;
  switchCommand?: { command: string; code: number | null };
  /**
   * Earlier cutovers of this pair that had stopped between their freeze and their
   * completion mark, and how this run decided each (src/cutover/reconcile.ts).
   */
  reconciled?: { frozen: string; target: string; action: string; detail: string }[];
  /** What the DBA does next. */
  next: string;
  ms: number;
}

/** The cutover did not happen; the source serves as before. Carries the report. */
export class CutoverRefusedError extends BluegreenError {
  constructor(
    message: string,
    readonly report: CutoverReport,
    hint?: string,
    /** 1, or 3 when the final verify found differences (the target was frozen again). */
    readonly exitCode: ExitCode = ExitCode.failure,
  ) {
    super(message, hint);
  }
}
