/**
 * Fault injection for tests. `BLUEGREEN_FAULT=<point>` makes the process kill itself with
 * SIGKILL when it reaches that named point, as a machine lost at exactly that instant
 * would; `BLUEGREEN_FAULT=<point>=pause:<ms>` makes it wait there instead, so a test can
 * terminate sessions or stall the network at that instant. Tests use it to stop a cutover
 * at every step boundary and check that the next command finds the truth and converges.
 * Unset (always, outside tests), it does nothing.
 */
export async function faultPoint(point: string): Promise<void> {
  const spec = process.env.BLUEGREEN_FAULT;
  if (!spec) return;
  const [at, action] = spec.split('=');
  if (at !== point) return;
  const pause = /^pause:(\d+)$/.exec(action ?? '');
  if (pause) await new Promise((r) => setTimeout(r, Number(pause[1])));
  else process.kill(process.pid, 'SIGKILL');
}
