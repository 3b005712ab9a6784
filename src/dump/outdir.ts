/**
 * The folder an export writes. An export marks the folder as its own while it writes
 * (`.bluegreen-export-incomplete`, removed once the manifest is written): a folder left
 * by a killed export is recognised and cleaned by the next export into it, any other
 * non-empty folder is refused, and `--force` replaces a previous complete dump.
 */
import { readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { prepareDumpDir } from './manifest.ts';
import path from 'node:path';
import { InvalidInputError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** Present while an export writes the folder; its presence afterwards means the export was interrupted. */
export const INCOMPLETE_MARKER = '.bluegreen-export-incomplete';

/** Files an export writes: the manifest, CSVs (and their key sets), the marker. */
const DUMP_FILE = /^(manifest\.json|.*\.csv|\.bluegreen-export-incomplete|.*\.tmp)$/;

export async function prepareExportDir(dir: string, opts: { force?: boolean; logger: Logger }): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch {
    // Missing, a file, unreadable: prepareDumpDir below says which, in one line.
  }
  if (entries.length > 0) {
    const ours = entries.every((e) => DUMP_FILE.test(e));
    const partial = entries.includes(INCOMPLETE_MARKER);
    const dump = entries.includes('manifest.json') || partial;
    if (!ours || !dump) {
      throw new InvalidInputError(
        `output directory ${dir} is not empty and is not a bluegreen dump${ours ? '' : ` (it holds ${entries.filter((e) => !DUMP_FILE.test(e)).slice(0, 3).join(', ')})`}`,
        'choose a new directory for the dump',
      );
    }
    if (!partial && !opts.force) {
      throw new InvalidInputError(`output directory ${dir} already holds a dump`, 'choose a new directory, or pass --force to replace that dump');
    }
    opts.logger.warn(partial ? `${dir}: removing the partial output of an interrupted export` : `${dir}: replacing the previous dump (--force)`);
    for (const e of entries) await rm(path.join(dir, e), { force: true });
  }
  // Creates it (0700) and proves it takes files, or refuses in one line (a file, read-only or pseudo file system).
  await prepareDumpDir(dir);
  await writeFile(path.join(dir, INCOMPLETE_MARKER), `export started ${new Date().toISOString()} by pid ${process.pid}\n`, { mode: 0o600 });
}

/** The export finished (manifest written): the folder is a complete dump. */
export async function markDumpComplete(dir: string): Promise<void> {
  await unlink(path.join(dir, INCOMPLETE_MARKER));
}
