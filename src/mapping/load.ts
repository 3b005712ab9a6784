/**
 * Loading a mapping file: untrusted JSON is checked against src/schemas/mapping.schema.json
 * (ajv, every error at once), then against the two versions' catalogs (analyse.ts), and
 * only then becomes a trusted `Mapping`.
 */
import { readFileSync } from 'node:fs';
import { readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import type { Catalog } from '../db/catalog-types.ts';
import { InvalidInputError, ValidationError, type ValidationProblem } from '../errors.ts';
import { analyseMapping, type Analysis } from './analyse.ts';
import type { Direction, MappingFile } from './types.ts';

/** Catalogs of the versions involved, by version number. */
export type CatalogsByVersion = Readonly<Record<number, Catalog>>;

/** A validated mapping: safe to compile. */
export interface Mapping {
  /** The file it came from (or a label for in-memory mappings). */
  file: string;
  /** Source version. */
  from: number;
  /** Target version. */
  to: number;
  /** The validated file contents. */
  spec: MappingFile;
  /** The semantic analysis: table plans and actual losses. */
  analysis: Analysis;
}

const schemaFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schemas', 'mapping.schema.json');
let validateSchema: ReturnType<Ajv['compile']> | undefined;

function schemaValidator(): ReturnType<Ajv['compile']> {
  if (validateSchema === undefined) {
    // Read synchronously once: the schema is part of the tool, not user input.
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    validateSchema = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  return validateSchema;
}

/** Turns ajv errors into problems a person can act on. */
function describe(file: string, errors: ErrorObject[]): ValidationProblem[] {
  // A failed oneOf (`from`: name or merge) reports every branch. When a branch got far
  // enough to report something deeper, that is the real problem; otherwise one sentence
  // saying what the value may be beats each branch's "must be string" / "must be object".
  const oneOfAt = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const deeper = (p: string) => errors.some((e) => e.instancePath.startsWith(p + '/'));
  const out: ValidationProblem[] = [];
  for (const e of errors) {
    const where = e.instancePath || '/';
    if (e.keyword !== 'oneOf' && oneOfAt.has(e.instancePath) && e.schemaPath.includes('/oneOf/')) continue;
    switch (e.keyword) {
      // `if` only says a `then` failed; the `then` errors say what.
      case 'if':
        break;
      case 'oneOf':
        if (!deeper(e.instancePath)) {
          out.push({
            file,
            path: where,
            message: where.endsWith('/from')
              ? 'must be a table name or {"merge": [table, table, ...]}'
              : where.endsWith('/watermark')
                ? 'must be a column name or {"column": "...", "zone": "Europe/Berlin", "skew": "30 seconds"} (zone and skew optional)'
                : 'matches none of the allowed shapes',
          });
        }
        break;
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        out.push({ file, path: where, message: `unknown key "${key}"`, hint: 'check its spelling against src/schemas/mapping.schema.json' });
        break;
      }
      case 'required':
        out.push({ file, path: where, message: `missing required key "${(e.params as { missingProperty: string }).missingProperty}"` });
        break;
      case 'const':
        out.push({ file, path: where, message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` });
        break;
      case 'enum':
        out.push({ file, path: where, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` });
        break;
      default:
        out.push({ file, path: where, message: e.message ?? 'is invalid' });
    }
  }
  return out;
}

/** Checks untrusted JSON against the mapping schema; every problem at once. */
export function validateMappingJson(json: unknown, file: string): MappingFile {
  const v = schemaValidator();
  if (!v(json)) throw new ValidationError(`invalid mapping ${file}`, describe(file, v.errors ?? []));
  return json as MappingFile;
}

/** What `parseMapping` checks a mapping against. */
export interface ParseContext {
  /** File path or label, for problems. */
  file: string;
  /** Version of the source rows. */
  sourceVersion: number;
  /** Version of the produced rows. */
  targetVersion: number;
  /** Catalogs of at least the two versions. */
  catalogs: CatalogsByVersion;
  /** Exports of the version's functions.ts, for `function` ops. */
  functions?: Readonly<Record<string, unknown>>;
}

/**
 * Validates untrusted mapping JSON (schema, then semantics against the catalogs) into a
 * trusted Mapping. Throws ValidationError with every problem.
 */
export function parseMapping(json: unknown, ctx: ParseContext): Mapping {
  const spec = validateMappingJson(json, ctx.file);
  const source = ctx.catalogs[ctx.sourceVersion];
  const target = ctx.catalogs[ctx.targetVersion];
  if (source === undefined || target === undefined) {
    throw new InvalidInputError(`no catalog for v${source === undefined ? ctx.sourceVersion : ctx.targetVersion}`, 'load the catalogs of both versions of the mapping');
  }
  const analysis = analyseMapping(spec, { file: ctx.file, sourceVersion: ctx.sourceVersion, targetVersion: ctx.targetVersion, source, target, functions: ctx.functions });
  // A drafted mapping (new-version --from) is not a mapping until its open decisions are made.
  const todo = (spec._todo ?? []).map((t, i): ValidationProblem => ({ file: ctx.file, path: `/_todo/${i}`, message: `open decision: ${t}`, hint: 'decide, edit the mapping, then delete the line from "_todo"' }));
  if (analysis.problems.length > 0 || todo.length > 0) throw new ValidationError(`invalid mapping ${ctx.file}`, [...analysis.problems, ...todo]);
  return { file: ctx.file, from: ctx.sourceVersion, to: ctx.targetVersion, spec, analysis };
}

/** Path of `mappings/vN/{up,down}.json`. */
export function mappingFile(mappingsDir: string, version: number, direction: Direction): string {
  return path.join(mappingsDir, `v${version}`, `${direction}.json`);
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Imports mappings/vN/functions.ts when present (the `function` op's escape hatch).
 * Runs the team's own code, as any migration tool does; only the exports are used.
 */
export async function loadFunctions(mappingsDir: string, version: number): Promise<Readonly<Record<string, unknown>>> {
  const file = path.join(mappingsDir, `v${version}`, 'functions.ts');
  if (!(await exists(file))) return {};
  const url = pathToFileURL(path.resolve(file)).href;
  // The bundled CLI registers its TypeScript hooks only when first needed (bin/bluegreen.js).
  (globalThis as Record<symbol, (() => void) | undefined>)[Symbol.for('bluegreen.tsHooks')]?.();
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (e) {
    // A team's own folder outside any "type": "module" package: tsx's global loader reads a
    // .ts file there as CommonJS and fails on its syntax; tsImport compiles it on its own.
    try {
      const { tsImport } = await import('tsx/esm/api');
      return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } catch {
      throw new ValidationError(`cannot load ${file}`, [{ file, path: '', message: (e as Error).message, hint: 'fix the module so tsx can import it' }]);
    }
  }
}

/**
 * Loads and validates `mappings/v<version>/<direction>.json`: `up` maps v(version-1) ->
 * v(version), `down` maps v(version) -> v(version-1). `catalogs` must hold both versions.
 * Throws ValidationError with every problem (file, JSON pointer, hint).
 */
export async function loadMapping(mappingsDir: string, version: number, direction: Direction, catalogs: CatalogsByVersion): Promise<Mapping> {
  const file = mappingFile(mappingsDir, version, direction);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ValidationError(`missing mapping ${file}`, [
      { file, path: '', message: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file does not exist' : (e as Error).message, hint: 'run `bluegreen new-version` to scaffold a version' },
    ]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`invalid mapping ${file}`, [{ file, path: '', message: `not JSON: ${(e as Error).message}` }]);
  }
  const functions = await loadFunctions(mappingsDir, version);
  const [sourceVersion, targetVersion] = direction === 'up' ? [version - 1, version] : [version, version - 1];
  return parseMapping(json, { file, sourceVersion, targetVersion, catalogs, functions });
}
