/**
 * `make demo`: the whole story on two local clusters, narrated, in about a minute.
 *
 * blue (v1) serves a simulated app that writes all the time; green gets v2; a full sync;
 * during the "hour-long deployment" a username is renamed and a user deleted; an
 * incremental sync catches both; cutover while the app keeps writing, proven lossless by
 * counting acknowledged writes; the app moves to green and writes there; rollback brings
 * those writes back to blue at v1. verify is clean at every step.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { readClusterState } from '../src/env/state.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const t0 = Date.now();

function say(step: string, text: string) {
  console.log(`\n${bold(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(2)}s] ${step}`)} ${text}`);
}

/** Runs `bluegreen ARGS` as a DBA would, showing the command and its output. */
function bg(args: string[], quiet = false): Promise<string> {
  console.log(dim(`$ bluegreen ${args.join(' ')}`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'bluegreen.js'), ...args, '--log-format', 'text', '--quiet'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BLUE_URL: '', GREEN_URL: '' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!quiet) process.stdout.write(String(d).replace(/^/gm, '  '));
    });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bluegreen ${args.join(' ')} exited ${code}`))));
  });
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/**
 * The simulated application: inserts a user and renames another, over and over, and
 * remembers every write the database acknowledged. `target` says where it writes and in
 * which schema (v1 on blue, v2 on green), the way a deploy flips the app.
 */
class App {
  acked: string[] = [];
  refused = 0;
  private stopped = false;
  private loop?: Promise<void>;
  constructor(private db: pg.Client, private version: 1 | 2, private tag: string) {}
  start() {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const name = `${this.tag}-${i}`;
        try {
          if (this.version === 1) await this.db.query(`insert into users (username, full_name) values ($1, 'App User')`, [name]);
          else await this.db.query(`insert into users (login, first_name, last_name) values ($1, 'App', 'User')`, [name]);
          this.acked.push(name);
        } catch {
          this.refused++; // frozen by the cutover: the app would retry on the new side
          await new Promise((r) => setTimeout(r, 25));
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    return this;
  }
  async stop() {
    this.stopped = true;
    await this.loop;
  }
}

/** The demo marks the schema it creates, so a later run knows what it may drop. */
const DEMO_MARK = 'bluegreen demo data (make demo drops and recreates it)';

/** Why this database is not the demo's to reset, or undefined when it is empty or the demo's own. */
async function notTheDemos(c: pg.Client): Promise<string | undefined> {
  const r = await c.query<{ mark: string | null; tables: string | null; state: boolean }>(
    `select obj_description('public'::regnamespace, 'pg_namespace') as mark,
            (select string_agg(tablename, ', ' order by tablename) from pg_tables where schemaname = 'public') as tables,
            exists (select 1 from pg_namespace where nspname = 'bluegreen') as state`,
  );
  const { mark, tables, state } = r.rows[0]!;
  if (mark === DEMO_MARK) return undefined;
  if (!tables && !state) return undefined;
  return tables ? `tables ${tables}` : 'a bluegreen state schema';
}

async function main() {
  say('1/9', 'Start two local PostgreSQL clusters, blue and green (embedded, under .bluegreen/).');
  await bg(['env', 'up']);
  const state = readClusterState(path.join(root, '.bluegreen'));
  const blue = await client(state.blue!.url);
  const green = await client(state.green!.url);
  // A clean slate, so the demo can run again and again, but only over the demo's own data:
  // anything else in the local clusters (a seed of your own, a restored dump) is never dropped.
  for (const [name, c] of [['blue', blue], ['green', green]] as const) {
    const foreign = await notTheDemos(c);
    if (foreign) {
      console.error(
        `\ndemo refused: the local ${name} cluster holds data the demo did not create (${foreign}); nothing was changed.\n` +
          `  to keep it: leave the clusters alone and run the commands yourself (README "Start here").\n` +
          `  to reset the local clusters (deletes ALL their data): make clean, then make demo.`,
      );
      process.exit(2);
    }
  }
  for (const c of [blue, green]) {
    await c.query(`drop schema if exists public cascade; drop schema if exists bluegreen cascade; create schema public; comment on schema public is '${DEMO_MARK}'`);
  }

  say('2/9', 'Blue runs the app at schema v1; green is deployed with v2 (login, first/last name, status).');
  await bg(['schema', 'apply', '--to', 'blue', '--schema-version', '1']);
  await bg(['schema', 'apply', '--to', 'green', '--schema-version', '2']);
  await bg(['seed', '--to', 'blue', '--rows', '5000']);
  const app = new App(blue, 1, 'blue-app').start();

  say('3/9', 'Full sync blue -> green through the v1 -> v2 mapping, verified on the snapshot it read.');
  await bg(['sync', '--from', 'blue', '--to', 'green']);

  say('4/9', 'The "hour-long deployment": meanwhile users rename themselves and leave.');
  await blue.query(`update users set username = 'alice.renamed' where id = 42`);
  await blue.query(`delete from users where id = 7`);
  console.log(dim(`  blue: user 42 renamed to alice.renamed, user 7 deleted (and the app keeps inserting: ${app.acked.length} so far)`));

  say('5/9', 'Incremental sync catches both (cron runs this every few minutes).');
  await bg(['sync', '--from', 'blue', '--to', 'green']);
  const u42 = await green.query(`select login from users where id = 42`);
  const u7 = await green.query(`select count(*)::int as n from users where id = 7`);
  console.log(`  green: user 42 login = ${u42.rows[0]?.login}; user 7 rows = ${u7.rows[0]?.n}`);

  say('6/9', 'Cutover while the app is still writing: freeze blue, final sync, verify, move sequences.');
  await bg(['status'], false);
  await bg(['cutover', '--from', 'blue', '--to', 'green']);
  await new Promise((r) => setTimeout(r, 200)); // the app now gets "frozen" errors on blue
  await app.stop();
  const onGreen = new Set((await green.query<{ login: string }>(`select login from users where login like 'blue-app-%'`)).rows.map((r) => r.login));
  const lost = app.acked.filter((l) => !onGreen.has(l));
  console.log(`  the app's writes acknowledged by blue: ${app.acked.length}; found on green: ${app.acked.length - lost.length}; lost: ${lost.length}; refused after the freeze: ${app.refused}`);
  if (lost.length) throw new Error(`lost writes: ${lost.slice(0, 5).join(', ')}`);

  say('7/9', 'The app moves to green (v2) and writes there; inserts get fresh ids past every synced one.');
  const greenApp = new App(green, 2, 'green-app').start();
  await new Promise((r) => setTimeout(r, 400));
  await greenApp.stop();
  await green.query(`update users set first_name = 'Ada', last_name = 'Lovelace' where id = 42`);
  console.log(`  green: ${greenApp.acked.length} users written by the app; user 42 renamed to Ada Lovelace`);

  say('8/9', 'Green misbehaves: roll back. Its writes flow to blue through the v2 -> v1 down mapping.');
  await bg(['sync', '--from', 'green', '--to', 'blue']);
  await bg(['cutover', '--from', 'green', '--to', 'blue']);
  const back = await blue.query<{ n: number }>(`select count(*)::int as n from users where username like 'green-app-%'`);
  const ada = await blue.query(`select full_name from users where id = 42`);
  console.log(`  blue (v1): ${back.rows[0]!.n} of green's ${greenApp.acked.length} app users present; user 42 full_name = ${ada.rows[0]?.full_name}`);
  if (back.rows[0]!.n !== greenApp.acked.length) throw new Error('rollback lost writes');

  say('9/9', 'Blue serves again at v1; one last verify across versions.');
  await bg(['verify', '--from', 'green', '--to', 'blue']);
  await blue.end();
  await green.end();
  console.log(`\n${bold('Done')} in ${((Date.now() - t0) / 1000).toFixed(0)} s. The clusters keep running: try \`npx bluegreen status\`; stop them with \`make env-down\`.`);
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exit(1);
});
