#!/usr/bin/env node
// Starts the CLI. From dist/cli.js (bundled by bin/build.mjs when `npm ci` runs the
// `prepare` script) when that bundle is newer than every TypeScript source: no
// TypeScript compilation at start-up. Otherwise (no dist/, a source edited or checked out
// since the build, or BLUEGREEN_FROM_SOURCE=1) through tsx's loader straight from the
// sources, so `npx bluegreen` always runs the code in the working tree. An installed
// package (npm pack, npm install -g) holds dist/ and no sources: it always runs the bundle,
// and needs tsx (for esbuild) only to compile a mapping's functions.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// Keep V8's young generation at its initial size. A COPY streams through Node as small
// Buffer objects whose memory lives outside the heap until a scavenge frees them; left to
// grow (the default doubles it up to 32 MB), the young generation lets tens of MB of spent
// COPY chunks wait for the next scavenge. Measured on a 1M-user full sync with verify:
// peak RSS 113-117 MB -> 87 MB, and Node's own CPU time slightly lower (1.15-1.18 s vs
// 1.25-1.37 s), since small scavenges of mostly dead objects are cheap. This flag is
// read whenever the young generation would grow, so setting it here, at start-up, works.
v8.setFlagsFromString('--semi-space-growth-factor=1');

// Process warnings (a library's DeprecationWarning; bluegreen's own ConnectionWarning, such
// as a ~/.pgpass ignored for its permissions) are printed by Node as plain text, which
// would break "every line is JSON" in a JSON log. Node's printer is replaced by one that
// writes them in the log's format, decided as scripts/context.ts logFormatOf does: the
// --log-format flag, else $BLUEGREEN_LOG_FORMAT, else text only on a terminal.
function logFormat() {
  const args = process.argv.slice(2);
  let flag;
  for (const [i, a] of args.entries()) {
    if (a === '--log-format') flag = args[i + 1];
    else if (a.startsWith('--log-format=')) flag = a.slice('--log-format='.length);
  }
  const f = flag ?? process.env.BLUEGREEN_LOG_FORMAT;
  if (f === 'json' || f === 'text') return f;
  return process.stderr.isTTY && process.stdout.isTTY ? 'text' : 'json';
}
/** The command words (`status`, `schema apply`), as the logger's `command` field says them; the run id is not known here. */
function commandWords() {
  const words = [];
  for (const a of process.argv.slice(2)) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  return words.join(' ') || 'bluegreen';
}
process.removeAllListeners('warning');
process.on('warning', (w) => {
  // A password never belongs in a warning; mask one anyway, as the logger does.
  const msg = String(w.message).replace(/(password\s*=\s*)\S+/gi, '$1***').replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  process.stderr.write(
    logFormat() === 'json'
      ? JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg, command: commandWords(), warning: w.name, ...(w.code ? { code: w.code } : {}) }) + '\n'
      : `warn: ${msg}${w.name === 'ConnectionWarning' ? '' : ` (${w.name})`}\n`,
  );
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist', 'cli.js');

/** True when some .ts file the bundle was built from changed after the build (a few ms). */
function stale(builtAt) {
  const newer = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return e.name !== 'node_modules' && newer(p);
      return e.name.endsWith('.ts') && statSync(p).mtimeMs > builtAt;
    });
  return ['src', 'scripts', 'fixtures'].some((d) => existsSync(path.join(root, d)) && newer(path.join(root, d)));
}

if (process.env.BLUEGREEN_FROM_SOURCE !== '1' && existsSync(bundle) && !stale(statSync(bundle).mtimeMs)) {
  // The hooks run on a loader thread of their own (about 20 MB of RSS), and only a mapping
  // with a functions.ts needs them: src/mapping/load.ts registers them before its first
  // such import, through this function.
  let hooks = false;
  globalThis[Symbol.for('bluegreen.tsHooks')] = () => {
    if (!hooks) register('./ts-hooks.mjs', import.meta.url);
    hooks = true;
  };
  await import(pathToFileURL(bundle).href);
} else if (!existsSync(path.join(root, 'scripts', 'cli.ts'))) {
  // An installed package holds the bundle only (no TypeScript sources to fall back on).
  process.stderr.write(`bluegreen: ${path.relative(process.cwd(), bundle) || bundle} is missing from this installation: reinstall the package\n`);
  process.exit(1);
} else {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  await import('../scripts/cli.ts');
}
