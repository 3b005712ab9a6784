/**
 * Failures of the mapping engine beyond file validation (which is a ValidationError).
 */
import { InvalidInputError } from '../errors.ts';

/** A table's mapping has no face for the requested path (SQL or offline JS). */
export class UnsupportedFaceError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** `sql` (live databases) or `js` (offline convert). */
    readonly face: 'sql' | 'js',
    /** One line per op without that face, naming it. */
    readonly reasons: string[],
  ) {
    super(
      `table ${table} cannot be converted ${face === 'js' ? 'offline (in Node)' : 'inside PostgreSQL'}: ${reasons.join('; ')}`,
      face === 'js'
        ? 'convert on a live database (import/sync), or add a functions.ts escape hatch with an exact JS face'
        : 'tables using a function op are converted in Node: export the source rows and transform them with the JS face',
    );
  }
}

/** A row value the mapping cannot convert (an unmapped value, an out-of-range cast...). */
export class MappingValueError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** Target column. */
    readonly column: string,
    /** The offending source value (text form). */
    readonly value: string | null,
    message: string,
    hint?: string,
  ) {
    super(`${table}.${column}: ${message} (value ${value === null ? 'NULL' : JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value)})`, hint);
  }
}
