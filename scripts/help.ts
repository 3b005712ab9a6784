/**
 * Help that can be pasted. yargs lays examples out in two columns and wraps both at the
 * terminal's width, which cuts a long command line (the cron line) in the middle: pasted
 * back, it runs half a command. So the examples and epilogues a command's builder declares
 * are taken from yargs here and printed after its help by {@link finishHelp}: each
 * example's command verbatim on a line of its own (never wrapped), its description as a
 * `#` comment above it, and prose wrapped between words but never inside a `backquoted`
 * command. Options stay in yargs' columns, wrapped at the terminal's width.
 */
import type { Argv, CommandModule } from 'yargs';

interface HelpExtras {
  examples: [command: string, description: string][];
  epilogues: string[];
}

/**
 * What the innermost command yargs has built so far declared. yargs builds the invoked
 * command's parents first and the command last (`env`, then `env up`), resetting its own
 * examples between them, so the last builder run is the one whose help is shown.
 */
let extras: HelpExtras = { examples: [], epilogues: [] };

/** Examples and epilogue of the top level (`bluegreen --help`). */
let topLevel: HelpExtras = { examples: [], epilogues: [] };

/** Declares the top level's examples and epilogue (before any command is built). */
export function topLevelHelp(examples: [string, string][], epilogue: string): void {
  topLevel = { examples, epilogues: [epilogue] };
  extras = topLevel;
}

/** Names that are not a command's own options (they have a group or a section of their own). */
function ownOptions(built: Argv<any>, cmd: CommandModule<any, any>, globals: string[]): string[] {
  const declared = Object.keys((built as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
  const positionals = [...String(cmd.command ?? '').matchAll(/[<[]([\w-]+)(?:\.\.)?[>\]]/g)].map((m) => m[1]!);
  return declared.filter((k) => !globals.includes(k) && !positionals.includes(k) && !['version', 'q', 'v', 'h'].includes(k) && !/[A-Z]/.test(k));
}

/**
 * A command as the CLI registers it: its builder's `.example()` and `.epilogue()` calls
 * are recorded for {@link finishHelp} instead of reaching yargs; its own options are
 * grouped before the global ones (yargs lists groups in the order they are declared, and
 * the global group is declared before any builder runs); and subcommands it registers
 * (`env up`, `capture enable`) get the same treatment.
 */
export function withPasteableHelp<U>(cmd: CommandModule<any, U>, globals: string[]): CommandModule<any, U> {
  const builder = cmd.builder;
  if (typeof builder !== 'function') return cmd;
  return {
    ...cmd,
    builder: (y: Argv<any>) => {
      const mine: HelpExtras = { examples: [], epilogues: [] };
      extras = mine;
      const target = y as unknown as Record<string, unknown>;
      const saved = { example: target.example, epilogue: target.epilogue, epilog: target.epilog, command: target.command };
      const hadOwn = Object.fromEntries(Object.keys(saved).map((k) => [k, Object.prototype.hasOwnProperty.call(y, k)]));
      // Own properties on the instance shadow yargs' methods while this builder runs only.
      target.example = function (this: Argv<any>, c: string | [string, string?][], d?: string) {
        for (const [command, description] of (Array.isArray(c) ? c : [[c, d]]) as [string, string?][]) mine.examples.push([command, description ?? '']);
        return this;
      };
      target.epilogue = target.epilog = function (this: Argv<any>, text: string) {
        mine.epilogues.push(text);
        return this;
      };
      target.command = function (this: Argv<any>, sub: unknown, ...rest: unknown[]) {
        const wrapped = sub && typeof sub === 'object' && !Array.isArray(sub) ? withPasteableHelp(sub as CommandModule<any, any>, globals) : sub;
        return (saved.command as (...a: unknown[]) => Argv<any>).call(this, wrapped, ...rest);
      };
      let built: Argv<any>;
      try {
        built = (builder(y) ?? y) as Argv<any>;
      } finally {
        // Back to yargs' own methods.
        for (const [k, v] of Object.entries(saved)) {
          if (hadOwn[k]) target[k] = v;
          else delete target[k];
        }
      }
      const own = ownOptions(built, cmd, globals);
      return (own.length ? built.group(own, 'Options:') : built) as Argv<U>;
    },
  } as CommandModule<any, U>;
}

/**
 * Words of `text` on lines of at most `width` columns (a longer word on a line of its
 * own), never breaking inside a `backquoted` span: a command quoted in prose stays on one
 * line. Existing line breaks are kept.
 */
export function wrapProse(text: string, width: number, indent = ''): string {
  const out: string[] = [];
  for (const paragraph of text.split('\n')) {
    // Backquoted spans are single tokens, whatever spaces they hold.
    const words = paragraph.match(/(?:`[^`]*`|[^\s`])+|`[^`]*$/g) ?? [];
    let line = '';
    for (const w of words) {
      if (line && indent.length + line.length + 1 + w.length > width) {
        out.push(indent + line);
        line = w;
      } else {
        line = line ? `${line} ${w}` : w;
      }
    }
    out.push(line ? indent + line : '');
  }
  return out.join('\n');
}

/**
 * The help yargs printed, completed with the shown command's examples (a `#` comment
 * line each, then the command as it is) and its epilogue (wrapped as prose). Text that is
 * not help (a completion script) is returned as it is.
 */
export function finishHelp(output: string, width: number, scriptName: string): string {
  if (!/^\s*-h, --help\b/m.test(output)) return output.endsWith('\n') ? output : `${output}\n`;
  const shown = extras;
  extras = topLevel;
  const parts = [output.replace(/\s+$/, '')];
  if (shown.examples.length) {
    const lines = ['Examples:'];
    for (const [command, description] of shown.examples) {
      if (description) lines.push(wrapProse(description, width, '  # '));
      lines.push(`  ${command.replace(/\$0/g, scriptName)}`);
    }
    parts.push(lines.join('\n'));
  }
  for (const e of shown.epilogues) parts.push(wrapProse(e.replace(/\$0/g, scriptName), width));
  return parts.join('\n\n') + '\n';
}
