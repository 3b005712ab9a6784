/**
 * cutover validates its flags while parsing, as sync does: `cutover --lookback abc` used to
 * connect, run its guardrails and exit 1 as a refused cutover, where `sync --lookback abc`
 * exits 2 at once; `--timeout` past Node's largest timer (about 24.8 days) fired at once,
 * stopping the cutover as soon as it had frozen the source; an empty `--switch-command`
 * switched nothing. Both URLs point at a listener that counts connections: a bad flag must
 * be exit 2 with none made.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { MAPPINGS } from '../helpers/pair.ts';

let server: net.Server;
let connections = 0;
let url: string;
beforeAll(async () => {
  // Accepts and drops at once: a bluegreen that connects fails fast, and is counted.
  server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `postgres://someone:pw@127.0.0.1:${(server.address() as net.AddressInfo).port}/db`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function cutover(args: string[]): Promise<{ r: CliResult; connected: number }> {
  const before = connections;
  const r = await runCli(['--mappings', MAPPINGS, 'cutover', '--from', 'blue', '--to', 'green', '--log-format', 'text', ...args], {
    BLUE_URL: url,
    GREEN_URL: url,
  });
  return { r, connected: connections - before };
}

describe('cutover rejects a bad flag with exit 2 before connecting', () => {
  const bad: [string[], RegExp][] = [
    [['--lookback', 'abc'], /--lookback must be a duration/],
    [['--lookback=-5s'], /--lookback must be a duration/],
    [['--lock-timeout', 'abc'], /--lock-timeout must be/],
    [['--max-lag', 'abc'], /--max-lag must be a number >= 0/],
    [['--max-lag', '-1'], /--max-lag must be a number >= 0/],
    [['--timeout', 'abc'], /--timeout must be a positive number/],
    [['--timeout', '0'], /--timeout must be a positive number/],
    [['--timeout', '2147484'], /--timeout must be a positive number <= 2147483/],
    [['--verify', 'none'], /--verify must be full or changed/],
    [['--switch-command', ''], /--switch-command is empty/],
  ];
  for (const [args, message] of bad) {
    it(args.join(' '), async () => {
      const { r, connected } = await cutover(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      // One line and its hint, no stack trace.
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
      expect(connected).toBe(0);
    });
  }

  it('valid flags do connect (the listener sees it), and fail there with exit 1', async () => {
    const { r, connected } = await cutover(['--lookback', '2 minutes', '--lock-timeout', '5s', '--max-lag', '0', '--timeout', '2147483', '--switch-command', 'true']);
    expect(r.code, r.stderr).toBe(1);
    expect(connected).toBeGreaterThan(0);
  });
});
