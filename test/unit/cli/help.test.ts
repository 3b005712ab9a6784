/**
 * Every command's help teaches: its own usage line and description (a subcommand's, not
 * its parent's), its options before the global ones, and examples that run: each one is
 * parsed by the real parser and must be accepted. Examples and the commands quoted in
 * prose are never wrapped, at any width. In-process (no database, no child process): the
 * parser is built as scripts/cli.ts builds it.
 */
import { describe, expect, it } from 'vitest';
import { buildParser, commandLine, COMMANDS } from '../../../scripts/parser.ts';
import { finishHelp, wrapProse } from '../../../scripts/help.ts';

class UsageFailure extends Error {}
class Parsed extends Error {}

/** The help text `bluegreen <words> --help` prints at `width` columns. */
async function help(words: string[], width = 80): Promise<string> {
  const args = [...words, '--help'];
  let out = '';
  await buildParser(args, { width, onUsageError: (m) => { throw new UsageFailure(m); } }).parseAsync(args, {}, (_e, _a, output) => {
    out = finishHelp(output, width, 'bluegreen');
  });
  return out;
}

/** undefined when `args` parse (no handler runs), else the usage error. */
async function usageError(given: string[]): Promise<string | undefined> {
  const args = commandLine(given);
  if (args === 'version') return 'asks for the tool version';
  const parser = buildParser(args, { width: 80, onUsageError: (m) => { throw new UsageFailure(m); } });
  // Runs after validation, before any handler: nothing connects.
  parser.middleware(() => {
    throw new Parsed();
  });
  try {
    await parser.parseAsync(args, {}, () => {});
  } catch (err) {
    if (err instanceof Parsed) return undefined;
    if (err instanceof UsageFailure) return err.message;
    throw err;
  }
  return 'no command ran';
}

/** The words of a shell command line up to its first redirection, pipe or `)`, quotes removed. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(>>|2>&1|>|\||&&|;|\))|([^\s'"|;>)]+)/g;
  let current: string | undefined;
  for (const m of line.matchAll(re)) {
    if (m[3]) break;
    const piece = m[1] ?? m[2] ?? m[4] ?? '';
    // Adjacent pieces (--to-url='a b') are one word.
    const glued = current !== undefined && line[m.index! - 1] !== ' ';
    if (glued) words[words.length - 1] += piece;
    else words.push(piece);
    current = piece;
  }
  return words;
}

/** The command words of every command, nested ones included (`env up`, `schema apply`). */
const PATHS = [
  ...['up', 'down', 'status', 'url', 'psql'].map((a) => ['env', a]),
  ['schema', 'apply'],
  ...['enable', 'disable', 'prune'].map((a) => ['capture', a]),
  ...COMMANDS.map((c) => String(c.command)).filter((c) => !['env', 'schema', 'capture'].includes(c)).map((c) => [c.split(' ')[0]!]),
  ['completion'],
];

describe('help of every command', () => {
  it('covers every command the parser knows', async () => {
    const top = await help([]);
    for (const c of ['env', 'schema', 'capture', ...PATHS.filter((p) => p.length === 1).map((p) => p[0])]) expect(top).toMatch(new RegExp(`^  bluegreen ${c}\\b`, 'm'));
  });

  it.each(PATHS.map((p) => [p.join(' '), p]))('%s: its own usage, description, grouped options and examples that parse', async (_name, words) => {
    const text = await help(words as string[]);
    const lines = text.split('\n');
    // Its own usage line, then its own one-line description (not the parent's).
    expect(lines[0]).toMatch(new RegExp(`^bluegreen ${(words as string[]).join(' ')}\\b`));
    expect(lines[1]).toBe('');
    expect(lines[2]!.length).toBeGreaterThan(10);
    expect(text).not.toMatch(/^Commands:/m);
    // Options: the command's own first (when it has any), the global ones after.
    const globals = text.indexOf('Global options:');
    expect(globals).toBeGreaterThan(0);
    if (text.includes('\nOptions:')) expect(text.indexOf('\nOptions:')).toBeLessThan(globals);
    // At least one example of this very command, and every example parses.
    const examples = lines.slice(lines.indexOf('Examples:') + 1).filter((l) => /^  [^#\s]/.test(l));
    expect(lines).toContain('Examples:');
    const own = examples.filter((l) => l.includes(`bluegreen ${(words as string[]).join(' ')}`));
    expect(own.length, text).toBeGreaterThan(0);
    for (const line of examples) {
      const at = /(?:^|[\s"(])(?:node bin\/bluegreen\.js|bluegreen) /.exec(line);
      if (!at) continue;
      const args = shellWords(line.slice(at.index + at[0].length));
      const err = await usageError(args);
      // A path in an example (a metrics file's folder) need not exist on this machine.
      if (err && /--metrics-file .*(does not exist)/.test(err)) continue;
      expect(err, `${line}\n-> ${JSON.stringify(args)}`).toBeUndefined();
    }
  });
});

describe('nothing a user pastes is wrapped', () => {
  it('sync --help at 80 columns keeps the cron line whole', async () => {
    const text = await help(['sync'], 80);
    expect(text).toContain('\n  */5 * * * * cd /srv/bluegreen && node bin/bluegreen.js sync --log-format json >> sync.log 2>&1\n');
  });

  it('at 40 columns too, every example of every command is one line', async () => {
    for (const words of PATHS) {
      const text = await help(words, 40);
      const examples = text.slice(text.indexOf('Examples:'));
      for (const l of examples.split('\n').filter((x) => /^  [^#\s]/.test(x))) expect(l, words.join(' ')).toMatch(/bluegreen|^  source|^  psql/);
    }
  });

  it('prose breaks between words, never inside a `quoted command`', () => {
    const text = 'Then run `bluegreen sync --from green --to blue` and `bluegreen cutover --from green --to blue` to go back.';
    const wrapped = wrapProse(text, 30);
    expect(wrapped.split('\n')).toContain('`bluegreen sync --from green --to blue`');
    expect(wrapped.replace(/\n/g, ' ')).toBe(text);
    for (const l of wrapped.split('\n')) if (!l.includes('`')) expect(l.length).toBeLessThanOrEqual(30);
  });
});
