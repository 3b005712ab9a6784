// CPU seconds over time, for bench/jobs-model.sh: every INTERVAL ms, one line
// "ms<TAB>client<TAB>blue<TAB>green<TAB>machine" of cumulative CPU clock ticks (user + system) of the
// measured client process and of each cluster (its postmaster, the postmaster's reaped
// children, and every live child: backends, walwriter, checkpointer, autovacuum), then the
// busy ticks of the whole machine (all cores, from /proc/stat).
// Runs until the client exits, then waits 300 ms (the postmasters reap the run's backends,
// whose CPU time then lands in the postmaster's reaped-children counters) and samples once
// more. The client's CPU after its last sample (at most one interval) is missed.
//
//   node bench/cpu-sample.mjs OUT INTERVAL_MS CLIENT_PID BLUE_POSTMASTER_PID GREEN_POSTMASTER_PID
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';

const [out, interval, client, ...postmasters] = process.argv.slice(2);
// Fields after the command name: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
const ticks = (pid, reaped) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0);
};
const tree = (pm) => {
  let t = ticks(pm, true);
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pm}/task/${pm}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {}
  for (const k of kids) {
    try {
      t += ticks(k, true);
    } catch {} // exited between the listing and the read: its time is in the reaped counters soon
  }
  return t;
};
// The whole machine's busy ticks (every core: user, nice, system, irq, softirq, steal), so
// the CPU time other work took during a run is the machine's minus ours.
const machineBusy = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
};
let lastClient = 0;
const sample = () => {
  try {
    lastClient = ticks(client, true);
  } catch {}
  appendFileSync(out, `${Date.now()}\t${lastClient}\t${postmasters.map(tree).join('\t')}\t${machineBusy()}\n`);
};
writeFileSync(out, '');
sample();
const alive = () => {
  try {
    process.kill(Number(client), 0);
    return true;
  } catch {
    return false;
  }
};
const timer = setInterval(() => {
  if (alive()) return sample();
  clearInterval(timer);
  setTimeout(sample, 300);
}, Number(interval));
