#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader: no build step, so `npx bluegreen` works
// straight after `npm ci`.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/cli.ts');
