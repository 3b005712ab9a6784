import type { CommandModule } from 'yargs';
import { envDown, envStatus, envUp } from '../../src/env/embedded.ts';
import { redactUrl } from '../../src/redact.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface EnvArgs extends GlobalArgs {
  action: 'up' | 'down' | 'status';
  names: string[];
}

export const envCommand: CommandModule<GlobalArgs, EnvArgs> = {
  command: 'env <action> [names..]',
  describe: 'Start, stop or show the local embedded blue and green clusters',
  builder: (y) =>
    y
      .positional('action', { choices: ['up', 'down', 'status'] as const, demandOption: true })
      .positional('names', { type: 'string', array: true, default: ['blue', 'green'], describe: 'Environments' })
      .example('$0 env up', 'start blue and green under .bluegreen/ (initialised on first use)')
      .example('$0 env status --json', 'ports, data directories, running or not')
      .example('$0 env down', 'stop both clusters (data is kept)') as never,
  handler: handle<EnvArgs>(async (argv, ctx) => {
    const { stateDir } = ctx.settings;
    if (argv.action === 'up') {
      const state = await envUp(stateDir, argv.names, ctx.logger);
      ctx.output(
        Object.fromEntries(argv.names.map((n) => [n, { url: redactUrl(state[n]!.url), port: state[n]!.port }])),
        () => argv.names.map((n) => `${n.padEnd(6)} ${redactUrl(state[n]!.url)}`).join('\n'),
      );
    } else if (argv.action === 'down') {
      await envDown(stateDir, argv.names, ctx.logger);
    } else {
      const status = await envStatus(stateDir, argv.names);
      ctx.output(
        status.map((s) => ({ ...s, url: s.url ? redactUrl(s.url) : undefined })),
        () =>
          status
            .map((s) => `${s.name.padEnd(6)} ${s.running ? 'running ' : 'stopped '} ${s.url ? redactUrl(s.url) : '(never started: bluegreen env up)'}`)
            .join('\n'),
      );
    }
  }),
};
