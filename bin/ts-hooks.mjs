// Module hooks for the bundled CLI (dist/cli.js is plain JavaScript). A team's
// mappings/vN/functions.ts (the `function` op's escape hatch) is still TypeScript imported
// at run time, so .ts/.mts files are compiled here with esbuild, the compiler tsx itself
// uses; everything else passes straight through. Registering tsx instead would route every
// module of every start-up through tsx, which is the cost the bundle exists to avoid.
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const TS = /\.m?ts$/;
let esbuild;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    // tsx accepts extensionless relative imports between TypeScript files: so do we.
    const fromTs = context.parentURL && TS.test(context.parentURL);
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && fromTs && /^\.{1,2}\//.test(specifier) && !TS.test(specifier)) {
      return nextResolve(`${specifier}.ts`, context);
    }
    throw err;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TS.test(url)) return nextLoad(url, context);
  // esbuild comes with tsx (a runtime dependency): resolve it through tsx.
  esbuild ??= createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))('esbuild');
  const file = fileURLToPath(url);
  const { code } = await esbuild.transform(await readFile(file, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: file,
    sourcemap: 'inline',
  });
  return { format: 'module', source: code, shortCircuit: true };
}
