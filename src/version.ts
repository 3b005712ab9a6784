import { readFileSync } from 'node:fs';

/** bluegreen's own version, from package.json; written into every manifest. */
export const TOOL_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
