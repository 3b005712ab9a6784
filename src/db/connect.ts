/**
 * Connections. Every session bluegreen opens pins the settings that change a value's text
 * form (`::text` depends on DateStyle, TimeZone and extra_float_digits: README, Design figures), so a
 * dump, a conversion and a checksum read the same bytes on any server.
 */
import pg from 'pg';
import { RuntimeFailure } from '../errors.ts';
import { redactUrl } from '../redact.ts';

/** Session settings pinned on every connection (sent in the startup packet: no round trip). */
export const PINNED_SETTINGS: Record<string, string> = {
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
  lc_monetary: 'C',
};

export type Client = pg.Client;

export interface ConnectOptions {
  /** Shown in pg_stat_activity, so a DBA sees who holds what. */
  applicationName?: string;
  /** Name used in error messages (`blue`, `green`). */
  label?: string;
}

export async function connect(url: string, opts: ConnectOptions = {}): Promise<pg.Client> {
  const options = Object.entries(PINNED_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/ /g, '\\ ')}`)
    .join(' ');
  const client = new pg.Client({
    connectionString: url,
    application_name: opts.applicationName ?? 'bluegreen',
    options,
  });
  // An idle client whose server goes away emits 'error'; without a listener that kills
  // the process with a stack trace. The next query reports the failure properly.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new RuntimeFailure(
      `cannot connect to ${opts.label ?? 'database'} at ${redactUrl(url)}: ${(err as Error).message}`,
      opts.label && ['blue', 'green'].includes(opts.label)
        ? `is it running? for the local clusters run \`bluegreen env up\``
        : 'check the URL, that the server is running, and the credentials',
    );
  }
  return client;
}

/** Runs `fn` with a connection and always closes it. */
export async function withClient<T>(url: string, opts: ConnectOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url, opts);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Quotes an identifier for SQL (`"weird ""name"""`). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Quotes a string literal for SQL. */
export function literal(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}
