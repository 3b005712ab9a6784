/**
 * One ajv instance for every JSON Schema in src/schemas/: untrusted JSON comes in as
 * `unknown` and leaves as a typed value, or as a ValidationError listing every problem
 * with its file and JSON path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';
import { ValidationError, type ValidationProblem } from './errors.ts';

// ajv-formats is CommonJS with a default export that NodeNext types awkwardly.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

const schemasDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'schemas');
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const compiled = new Map<string, ValidateFunction>();

/** Absolute path of a schema file in src/schemas. */
export function schemaPath(name: string): string {
  return path.join(schemasDir, name);
}

function validator(name: string): ValidateFunction {
  let v = compiled.get(name);
  if (v === undefined) {
    const schema = JSON.parse(readFileSync(schemaPath(name), 'utf8'));
    delete schema.$schema;
    const fresh = ajv.compile(schema);
    compiled.set(name, fresh);
    return fresh;
  }
  return v;
}

/** Turns ajv errors into problems a person can act on. */
export function describeAjvErrors(file: string, errors: ErrorObject[]): ValidationProblem[] {
  return errors.map((e) => {
    const where = e.instancePath || '/';
    switch (e.keyword) {
      case 'additionalProperties':
        return {
          file,
          path: where,
          message: `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`,
          hint: 'check its spelling against the schema',
        };
      case 'required':
        return { file, path: where, message: `missing required key "${(e.params as { missingProperty: string }).missingProperty}"` };
      case 'enum':
        return {
          file,
          path: where,
          message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
        };
      default:
        return { file, path: where, message: e.message ?? 'is invalid' };
    }
  });
}

/** Validates `data` against src/schemas/`schemaName`; throws every problem at once. */
export function validateAgainst<T>(schemaName: string, data: unknown, file: string, what: string): T {
  const v = validator(schemaName);
  if (!v(data)) throw new ValidationError(what, describeAjvErrors(file, v.errors ?? []));
  return data as T;
}
