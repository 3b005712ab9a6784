/**
 * The mapping engine's public API. Everything the rest of bluegreen needs comes from here:
 *
 * - loadMapping / parseMapping: untrusted JSON -> validated Mapping (ValidationError otherwise)
 * - compileStep / compileChain: per target table, SQL face (selectSql) and JS face (transformJs)
 * - checkMappings / scaffoldVersion: `bluegreen check` and `bluegreen new-version`
 * - keyComparator / mergeJoin: offline conversion of merged tables from key-sorted dumps
 */
export { loadMapping, parseMapping, mappingFile, validateMappingJson, type CatalogsByVersion, type Mapping, type ParseContext } from './load.ts';
export { compileStep, type CompiledStep, type CompiledTable, type CompileOptions, type SourceTable, type ColumnOrigin, type UserExpression } from './compile.ts';
export { compileChain, composeMappings, loadChain, lostGoingUp, type CompiledChain } from './chain.ts';
export { checkMappings, applyStep, listMappingVersions, type CheckReport, type RoundTrip, type RoundTripTable, type FixtureRows } from './check.ts';
export { scaffoldVersion, type ScaffoldResult } from './scaffold.ts';
export { keyKind, keyComparator, mergeJoin, compareIntText, compareUtf8, type KeyKind, type KeyComparator, type MergeJoinOptions } from './keys.ts';
export { UnsupportedFaceError, MappingValueError, MappingExpressionError, RowConversionError, shownKey } from './errors.ts';
export type { Row, Direction, MappingFile, TableMappingSpec, ColumnOpSpec, LossSpec, MappingFunction } from './types.ts';
