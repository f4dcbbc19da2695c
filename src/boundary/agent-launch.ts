// The command line that puts a program inside the boundary: the agent's network namespace, then
// new mount, PID and IPC namespaces where, still as root, the side channels are masked, the CA
// bundle swapped, shared memory and /run made private and inherited descriptors closed, then a seccomp
// filter (socket families), a new session (no controlling terminal to push keystrokes into)
// and setpriv to the agent user with nothing left to regain privileges with.

import { seccompArgv, type SyscallTable } from './seccomp.js';
import { withoutPrivileges } from './setpriv.js';

export interface LaunchTools {
  readonly ip: string;
  readonly unshare: string;
  readonly mount: string;
  readonly prlimit: string;
  readonly setpriv: string;
  readonly setsid: string;
  readonly bash: string;
  readonly perl: string;
}

export interface LaunchPlan {
  readonly netns: string;
  readonly workdir: string;
  readonly uid: number;
  readonly gid: number;
  /** RLIMIT_NPROC for the agent user: bounds fork bombs. */
  readonly maxProcesses: number;
  /** Bound read-only over each of `caBundleTargets`. */
  readonly caBundle: string;
  readonly caBundleTargets: readonly string[];
  /** Directories get an empty read-only tmpfs, anything else /dev/null. */
  readonly masked: readonly string[];
  /** The agent's own /run: built on `stage` (an empty directory), holding only `keep`. */
  readonly privateRun: PrivateRun;
  /** This machine's system call numbers, for the seccomp filter. */
  readonly syscalls: SyscallTable;
}

/**
 * Host daemons bind their sockets under /run (a container engine, the system bus, a database),
 * before the run or during it, and a restart re-creates a socket, which drops a mask mounted
 * over the old one. The agent's /run is therefore a fresh tmpfs with only its run's own
 * directories (`keep`, each under /run) bound back, and an empty /run/lock for lock files.
 */
export interface PrivateRun {
  readonly stage: string;
  readonly keep: readonly string[];
}

export const PRIVATE_RUN = '/run';

/** Whether the agent sees `path` (absolute, resolved) only through its private /run. */
export function isUnderPrivateRun(path: string): boolean {
  return path === PRIVATE_RUN || path.startsWith(`${PRIVATE_RUN}/`);
}

// Runs as root (bash) in the new namespaces. Only quoted expansions: nothing in the environment
// (which is already the agent's) changes what it does.
const SETUP = `set -eu
mount_bin=$1 workdir=$2 bundle=$3
shift 3
n=$1; shift
while [ "$n" -gt 0 ]; do
  "$mount_bin" --bind "$bundle" "$1"
  "$mount_bin" -o remount,bind,ro "$1"
  n=$((n - 1)); shift
done
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ -d "$1" ]; then
    "$mount_bin" -t tmpfs -o ro,nosuid,nodev,noexec,mode=0555,size=4k pipelock-masked "$1"
  elif [ -e "$1" ]; then
    "$mount_bin" --bind /dev/null "$1"
  fi
  n=$((n - 1)); shift
done
# Shared memory and /var/tmp outlive a run on the host: this run's are its own.
for dir in /dev/shm /var/tmp; do
  if [ -d "$dir" ]; then "$mount_bin" -t tmpfs -o nosuid,nodev,mode=1777 pipelock-private "$dir"; fi
done
stage=$1 n=$2; shift 2
"$mount_bin" -t tmpfs -o nosuid,nodev,mode=0755,size=1m pipelock-run "$stage"
while [ "$n" -gt 0 ]; do
  (umask 022 && mkdir -p "$stage/\${1#/run/}")
  "$mount_bin" --bind "$1" "$stage/\${1#/run/}"
  n=$((n - 1)); shift
done
mkdir -m 1777 "$stage/lock"
# Last: the userspace mount table lives under the /run this hides (-n: not updated).
"$mount_bin" -n --move "$stage" /run
# Descriptors the caller left open (a file, a socket) are not the agent's to use.
for fd in /proc/self/fd/*; do
  fd=\${fd##*/}
  if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
cd "$workdir"
exec "$@"
`;

/** argv that runs `bash SCRIPT ARGS` as the agent inside the boundary. */
export function agentArgv(
  tools: LaunchTools,
  plan: LaunchPlan,
  script: string,
  args: readonly string[],
): string[] {
  const stray = plan.privateRun.keep.find(
    (path) => path === PRIVATE_RUN || !isUnderPrivateRun(path),
  );
  if (stray !== undefined) throw new Error(`${stray} is not a directory under ${PRIVATE_RUN}`);
  return [
    tools.ip,
    'netns',
    'exec',
    plan.netns,
    tools.unshare,
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--ipc',
    '--fork',
    '--mount-proc',
    '--kill-child',
    '--',
    tools.bash,
    '-c',
    SETUP,
    'pipelock-egress-setup',
    tools.mount,
    plan.workdir,
    plan.caBundle,
    String(plan.caBundleTargets.length),
    ...plan.caBundleTargets,
    String(plan.masked.length),
    ...plan.masked,
    plan.privateRun.stage,
    String(plan.privateRun.keep.length),
    ...plan.privateRun.keep,
    // The filter first (as root, before anything of the agent's runs), then a new session,
    // the process limit, and the agent's identity with nothing to regain privileges with.
    ...seccompArgv(tools.perl, plan.syscalls, [
      tools.setsid,
      '--wait',
      tools.prlimit,
      `--nproc=${plan.maxProcesses}`,
      '--',
      tools.setpriv,
      ...withoutPrivileges(plan.uid, plan.gid),
      '--',
      tools.bash,
      script,
      ...args,
    ]),
  ];
}
