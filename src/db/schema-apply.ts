/** `schema apply`: create version N's schema in an empty database, in one transaction. */
import { connect } from './connect.ts';
import { listVersions, readCatalog, readSchemaSql, schemaFile } from './catalog.ts';
import { InvalidInputError } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface SchemaApplyOptions {
  url: string;
  environment: string;
  mappingsDir: string;
  version: number;
  logger: Logger;
}

export async function schemaApply(opts: SchemaApplyOptions): Promise<{ tables: string[] }> {
  const versions = await listVersions(opts.mappingsDir);
  if (!versions.includes(opts.version)) {
    throw new InvalidInputError(`version ${opts.version} does not exist in ${opts.mappingsDir}`, `known versions: ${versions.map((v) => `v${v}`).join(', ')}`);
  }
  const sql = await readSchemaSql(opts.mappingsDir, opts.version);
  const client = await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen schema apply' });
  try {
    const existing = Object.keys((await readCatalog(client)).tables);
    if (existing.length > 0) {
      throw new InvalidInputError(
        `${opts.environment} already has tables (${existing.join(', ')}); schema apply only creates a schema in an empty database`,
        'point it at an empty database; to load data into an existing schema use `bluegreen import` or `sync`',
      );
    }
    await client.query('begin');
    try {
      await client.query(sql);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw new InvalidInputError(`${schemaFile(opts.mappingsDir, opts.version)} failed on ${opts.environment}: ${(err as Error).message}`);
    }
    const tables = Object.keys((await readCatalog(client)).tables);
    opts.logger.info(`${opts.environment}: created v${opts.version} (${tables.join(', ')})`);
    return { tables };
  } finally {
    await client.end().catch(() => {});
  }
}
