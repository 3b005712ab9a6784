import type { CommandModule } from 'yargs';
import { envDown, envStatus, envUp } from '../../src/env/embedded.ts';
import { spawn } from 'node:child_process';
import { redactUrl } from '../../src/redact.ts';
import { readClusterState } from '../../src/env/state.ts';
import { RuntimeFailure, UsageError } from '../../src/errors.ts';
import { handle, type GlobalArgs } from '../context.ts';

interface EnvArgs extends GlobalArgs {
  action: 'up' | 'down' | 'status' | 'url' | 'psql';
  names: string[];
}

type Action = EnvArgs['action'];

/** One action of `env` (`env up`), with its own help; every action runs {@link run}. */
function envAction(action: Action, describe: string, names: { default: string[]; describe: string }, examples: [string, string][]): CommandModule<GlobalArgs, EnvArgs> {
  return {
    command: `${action} [names..]`,
    describe,
    builder: (y) => {
      let b = y.positional('names', { type: 'string', array: true, default: names.default, describe: names.describe });
      for (const [cmd, what] of examples) b = b.example(cmd, what);
      return b as never;
    },
    handler: (argv) => run({ ...argv, action }),
  };
}

const BOTH = { default: ['blue', 'green'], describe: 'Environments' };
const ONE = { default: ['blue'], describe: 'One environment' };

export const envCommand: CommandModule<GlobalArgs, EnvArgs> = {
  command: 'env',
  describe: 'Start, stop or show the local embedded blue and green clusters',
  builder: (y) =>
    y
      .command(envAction('up', 'Start local clusters under .bluegreen/ (initialised on first use)', BOTH, [
        ['$0 env up', 'start blue and green'],
        ['$0 env up purple', 'a third local cluster, purple'],
      ]))
      .command(envAction('down', 'Stop local clusters (their data is kept)', BOTH, [['$0 env down', 'stop both clusters']]))
      .command(envAction('status', 'Ports, data directories, running or not', BOTH, [
        ['$0 env status', 'both clusters'],
        ['$0 env status --json', 'machine-readable'],
      ]))
      .command(envAction('url', "Print a local cluster's full URL, password included (for psql, a GUI, an app)", ONE, [
        ['$0 env url blue', "the local blue cluster's URL"],
        ['psql "$(bluegreen env url green)"', 'psql on green, as the shell sees the value'],
      ]))
      .command(envAction('psql', 'Open psql on a local cluster', ONE, [['$0 env psql green', 'psql on the local green cluster']]))
      .demandCommand(1, 'name what to do: env up, env down, env status, env url or env psql')
      .example('$0 env up', 'start blue and green under .bluegreen/ (initialised on first use)')
      .example('$0 env status --json', 'ports, data directories, running or not')
      .example('$0 env down', 'stop both clusters (data is kept)')
      .example('$0 env url blue', "the local blue cluster's full URL, password included (for psql, a GUI, an app)")
      .example('$0 env psql green', 'psql on the local green cluster') as never,
  // Never reached: an action is demanded.
  handler: () => {},
};

const run = handle<EnvArgs>(async (argv, ctx) => {
    const { stateDir } = ctx.settings;
    if (argv.action === 'up') {
      const state = await envUp(stateDir, argv.names, ctx.logger);
      ctx.output(
        Object.fromEntries(argv.names.map((n) => [n, { url: redactUrl(state[n]!.url), port: state[n]!.port }])),
        () => argv.names.map((n) => `${n.padEnd(6)} ${redactUrl(state[n]!.url)}`).join('\n'),
      );
    } else if (argv.action === 'url' || argv.action === 'psql') {
      const name = argv.names.length === 2 && argv.names[0] === 'blue' && argv.names[1] === 'green' ? 'blue' : argv.names[0]!;
      if (argv.names.length > 1 && name !== 'blue') throw new UsageError(`env ${argv.action} takes one environment`, `e.g. bluegreen env ${argv.action} blue`);
      const cluster = readClusterState(stateDir)[name];
      // Only the local clusters this tool made: a configured URL's password stays where its owner put it.
      if (!cluster) throw new UsageError(`${name} is not a local cluster of this folder (${stateDir})`, 'bluegreen env up starts them; for a configured environment, use its own URL');
      if (argv.action === 'url') {
        ctx.output({ environment: name, url: cluster.url }, () => cluster.url, { revealSecrets: true, plain: true });
        return;
      }
      return await new Promise<number>((resolve, reject) => {
        const child = spawn('psql', [cluster.url], { stdio: 'inherit' });
        child.on('error', (err) =>
          reject(
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? new RuntimeFailure('psql is not installed (or not on PATH)', `connect with any client to the URL from: bluegreen env url ${name}`)
              : err,
          ),
        );
        child.on('exit', (code) => resolve(code ?? 1));
      });
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
  });
