/**
 * libpq's connection service file (`pg_service.conf`): `service=NAME` in a conninfo, or
 * PGSERVICE, names a section whose `keyword=value` lines fill in what the conninfo leaves
 * out. No maintained npm package reads this format, so this is a small parser that
 * follows libpq's own (src/interfaces/libpq/fe-connect.c, parseServiceFile):
 *
 * - files searched in order: PGSERVICEFILE (else ~/.pg_service.conf), then the system
 *   file `pg_service.conf` in PGSYSCONFDIR (else /etc/postgresql-common, where Debian's
 *   libpq looks). The first file that has the section wins; the system file is not read
 *   when the user's file has it.
 * - a line is trimmed; empty lines and lines starting with `#` are skipped; `[name]` starts
 *   a section (names compare exactly); inside the wanted section every other line must be
 *   `keyword=value`, the value taken literally up to the end of the line (no quoting, no
 *   escapes: libpq has none here). Lines of other sections are not looked at, as libpq.
 * - a keyword must be a connection keyword, and `service` itself may not be nested.
 *
 * Errors carry the file and line, never a value (a section may hold a password).
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class ServiceFileError extends Error {}

export interface ServiceDefinition {
  /** The file the section was read from. */
  file: string;
  /** Its keyword=value lines. */
  params: Record<string, string>;
}

/**
 * The section `name` of a service file's text, or undefined when the file has none.
 * `known` tells a connection keyword from a typo.
 */
export function readServiceSection(text: string, name: string, file: string, known: (keyword: string) => boolean): Record<string, string> | undefined {
  let found: Record<string, string> | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      // A second section ends the one we found (libpq stops reading there too).
      if (found) return found;
      if (line === `[${name}]`) found = {};
      continue;
    }
    if (!found) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ServiceFileError(`syntax error in service file ${file}, line ${i + 1}: expected keyword=value`);
    const keyword = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (keyword === 'service') throw new ServiceFileError(`nested service specifications are not supported in service file ${file}, line ${i + 1}`);
    if (!known(keyword)) throw new ServiceFileError(`syntax error in service file ${file}, line ${i + 1}: "${keyword}" is not a connection keyword`);
    // libpq keeps the first value of a keyword given twice in one section.
    if (!(keyword in found)) found[keyword] = value;
  }
  return found;
}

/** The service files to search, in libpq's order. */
export function serviceFiles(env: Record<string, string | undefined>): string[] {
  const user = env.PGSERVICEFILE || path.join(env.HOME || os.homedir(), '.pg_service.conf');
  const system = path.join(env.PGSYSCONFDIR || '/etc/postgresql-common', 'pg_service.conf');
  return [user, system];
}

/**
 * Looks the service up as libpq does. A missing file is skipped (as libpq, except that
 * an explicitly named PGSERVICEFILE that does not exist is an error: it is a typo, and
 * libpq 16+ says so too); a service found nowhere is an error.
 */
export function lookupService(name: string, env: Record<string, string | undefined>, known: (keyword: string) => boolean): ServiceDefinition {
  const files = serviceFiles(env);
  for (const [i, file] of files.entries()) {
    let text: string;
    try {
      if (!statSync(file).isFile()) continue;
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (i === 0 && env.PGSERVICEFILE) throw new ServiceFileError(`service file ${file} (PGSERVICEFILE) cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    const params = readServiceSection(text, name, file, known);
    if (params) return { file, params };
  }
  throw new ServiceFileError(`definition of service "${name}" not found (searched ${files.join(' and ')})`);
}
