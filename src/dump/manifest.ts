/**
 * The dump directory: manifest.json plus one CSV per table (PostgreSQL's own CSV, header
 * row, NULL unquoted-empty, '' quoted). Reading a dump validates the manifest against its
 * JSON Schema and every file's sha256 before anything else touches the data.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ChecksumMismatchError, DumpError, InvalidInputError } from '../errors.ts';
import { validateAgainst } from '../validate.ts';
import { TOOL_VERSION } from '../version.ts';

export const MANIFEST_FILE = 'manifest.json';
export const DUMP_FORMAT = 'bluegreen-dump/1';

export interface DumpFileInfo {
  /** File name inside the dump directory. */
  file: string;
  /** Data rows (header excluded). */
  rows: number;
  /** Size in bytes. */
  bytes: number;
  /** Hex sha256 of the file's bytes. */
  sha256: string;
}

export interface DumpTable extends DumpFileInfo {
  /** Table name in the dump's schema version. */
  name: string;
  /** Columns, in the CSV's order (matches its header). */
  columns: string[];
  /** Key columns; rows are ordered by them. */
  key: string[];
  /** Watermark column and the range this dump covers. */
  watermark?: { column: string; from?: string | null; to?: string | null };
  /** Incremental dumps: the full key set at the snapshot (deletes = target keys not in it). */
  keysFile?: DumpFileInfo;
}

export interface Manifest {
  format: typeof DUMP_FORMAT;
  tool: { name: 'bluegreen'; version: string };
  /** Version the data is in. */
  schemaVersion: number;
  /** Version of the original export, when this dump was converted. */
  convertedFrom?: number;
  mode: 'full' | 'incremental';
  createdAt: string;
  source?: { environment?: string; url?: string; serverVersion?: string; snapshotTime?: string };
  /** Tables in load order. */
  tables: DumpTable[];
}

/**
 * The file a table's rows (or, with `.keys.csv`, its key set) are dumped to. Safe by
 * construction whatever the table is called: letters a-z, digits and `_` stay as they are
 * (the sample's `users.csv`); every other byte of the name's UTF-8 becomes `%XX`, so the
 * result never holds a slash, a backslash, a `.` of its own or an upper-case letter (two tables
 * differing only in case get different files on case-insensitive file systems too), and
 * distinct tables never share a file. A table name has at most 63 bytes: the file name
 * stays under 200.
 */
export function dumpFileName(table: string, suffix: '.csv' | '.keys.csv' = '.csv'): string {
  let out = '';
  for (const byte of Buffer.from(table, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[a-z0-9_]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out + suffix;
}

/**
 * Refuses a manifest file name that could reach outside the dump directory or is not a
 * plain file name (`..`, `/etc/passwd`, `a/b`, a NUL): a manifest is untrusted input.
 */
export function checkDumpFileName(name: string, table: string, manifestFile: string): void {
  const plain = name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && path.basename(name) === name;
  if (!plain) {
    throw new DumpError(
      `${manifestFile}: table ${table} names file ${JSON.stringify(name)}, which is not a plain file name inside the dump`,
      'a dump names only files in its own directory; this manifest was edited or forged: export again',
    );
  }
}

/** One line for a file-system error on `dir` (read-only, permission, not a directory…). */
function dirProblem(dir: string, err: unknown): InvalidInputError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const why: Record<string, string> = {
    EROFS: 'is on a read-only file system',
    EACCES: 'is not writable (permission denied)',
    EPERM: 'cannot be created there (operation not permitted)',
    ENOTDIR: 'is inside a file, not a directory',
    ENOENT: 'cannot be created there (the parent does not accept new directories)',
    ENOSPC: 'is on a full file system',
  };
  return new InvalidInputError(`output directory ${dir} ${why[code] ?? `is not usable (${code})`}`, 'choose a writable directory for --out');
}

/** mkdir -p without Node's recursive mkdir, which loops forever under /proc (ENOENT with the parent present). */
async function makeDirs(dir: string, depth = 0): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir || depth > 100) throw err;
    // The parent exists yet the directory cannot be made in it: a pseudo file system.
    if (await stat(parent).then(() => true, () => false)) throw err;
    await makeDirs(parent, depth + 1);
    await mkdir(dir, { mode: 0o700 });
  }
}

/**
 * Makes `dir` ready for a new dump: an empty directory, created (0700) if missing. Every
 * refusal is one line, exit 2, and fast: `--out` naming a file, a read-only or pseudo file
 * system (`/proc/x`, `/sys/x`), a directory that is not empty. Returns whether it created it.
 */
export async function prepareDumpDir(dir: string, what = 'dump'): Promise<boolean> {
  let st;
  try {
    st = await stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw dirProblem(dir, err);
  }
  if (st && !st.isDirectory()) throw new InvalidInputError(`--out ${dir} is a file, not a directory`, `name a new directory for the ${what}`);
  if (st) {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      throw dirProblem(dir, err);
    }
    if (entries.length > 0) throw new InvalidInputError(`output directory ${dir} is not empty`, `choose a new directory for the ${what}, or remove the old one`);
  }
  try {
    if (!st) await makeDirs(path.resolve(dir));
    await chmod(dir, 0o700);
    // Proves the directory takes files (a read-only mount lets mkdir of an existing dir pass).
    const probe = path.join(dir, '.bluegreen-write-test');
    await writeFile(probe, '', { mode: 0o600 });
    await unlink(probe);
  } catch (err) {
    throw dirProblem(dir, err);
  }
  return !st;
}

export function newManifest(fields: Omit<Manifest, 'format' | 'tool' | 'createdAt'>): Manifest {
  return { format: DUMP_FORMAT, tool: { name: 'bluegreen', version: TOOL_VERSION }, createdAt: new Date().toISOString(), ...fields };
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
}

/** Reads and validates manifest.json (no checksum work). */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DumpError(`${dir} is not a bluegreen dump: ${MANIFEST_FILE} is missing`, 'pass the directory written by `bluegreen export --out DIR`');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DumpError(`${file} is not valid JSON: ${(err as Error).message}`, 'the dump is damaged; export it again');
  }
  if (json && typeof json === 'object' && 'format' in json && (json as { format: unknown }).format !== DUMP_FORMAT) {
    throw new DumpError(`${file}: dump format ${JSON.stringify((json as { format: unknown }).format)} is not supported (this bluegreen reads ${DUMP_FORMAT})`, 'use the bluegreen version that wrote it');
  }
  const manifest = validateAgainst<Manifest>('manifest.schema.json', json, file, `invalid dump manifest`);
  const names = new Set<string>();
  for (const t of manifest.tables) {
    if (names.has(t.name)) throw new DumpError(`${file}: table ${t.name} is listed twice`);
    names.add(t.name);
    checkDumpFileName(t.file, t.name, file);
    if (t.keysFile) checkDumpFileName(t.keysFile.file, t.name, file);
  }
  return manifest;
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  await pipeline(createReadStream(file), async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) {
      h.update(chunk);
      bytes += chunk.length;
    }
  });
  return { sha256: h.digest('hex'), bytes };
}

/**
 * Reads a dump and proves every file is the one the manifest describes. Throws
 * ChecksumMismatchError naming the file; nothing is written anywhere before this passes.
 */
export async function openDump(dir: string): Promise<Manifest> {
  const manifest = await readManifest(dir);
  for (const t of manifest.tables) {
    for (const f of [t, ...(t.keysFile ? [t.keysFile] : [])]) {
      const file = path.join(dir, f.file);
      let st;
      try {
        st = await lstat(file);
      } catch {
        throw new DumpError(`dump file ${file} (table ${t.name}) is missing`, 'the dump is incomplete; export it again');
      }
      // Not a directory (EISDIR), a FIFO (would block) or a symlink out of the dump.
      if (!st.isFile()) throw new DumpError(`dump file ${file} (table ${t.name}) is not a regular file`, 'the dump was altered; export it again');
      const actual = await hashFile(file);
      if (actual.sha256 !== f.sha256) throw new ChecksumMismatchError(file, f.sha256, actual.sha256);
      if (actual.bytes !== f.bytes) throw new ChecksumMismatchError(file, f.sha256, actual.sha256);
    }
  }
  return manifest;
}
