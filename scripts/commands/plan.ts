import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.ts';
export const planCommand: CommandModule<GlobalArgs, GlobalArgs> = { command: 'plan', describe: 'placeholder', handler: () => {} };
