// The command line that puts a program inside the boundary, for no longer than the run that
// starts it lives: the agent's network namespace, then new mount, PID and IPC namespaces
// where, still as root, the CA bundle is swapped, /dev/shm, /var/tmp, /tmp, /run and
// /dev/mqueue made the agent's own, the other side channels masked and inherited descriptors
// closed, then a seccomp filter (socket families), a new session (no controlling terminal to
// push keystrokes into) and setpriv to the agent user with nothing left to regain privileges
// with.

import { isInsideDir, type PrivateDir } from './private-dirs.js';
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
  /** Get a fresh tmpfs each, in order, before the masks. */
  readonly privateDirs: readonly PrivateDir[];
  /** This machine's system call numbers, for the seccomp filter. */
  readonly syscalls: SyscallTable;
}

// Runs as root (bash) in the new namespaces. Only quoted expansions: nothing in the environment
// (which is already the agent's) changes what it does.
const SETUP = `set -eu
mount_bin=$1 workdir=$2 bundle=$3
shift 3
n=$1; shift
while [ "$n" -gt 0 ]; do
  "$mount_bin" -n --bind "$bundle" "$1"
  "$mount_bin" -n -o remount,bind,ro "$1"
  n=$((n - 1)); shift
done
# Each private directory: a tmpfs on its stage, what the run keeps there bound back, then
# moved into place. -n: the userspace mount table is under /run, which is replaced.
n=$1; shift
while [ "$n" -gt 0 ]; do
  dir=$1 mode=$2 stage=$3 k=$4
  shift 4
  n=$((n - 1))
  if [ ! -d "$dir" ]; then shift "$k"; continue; fi
  "$mount_bin" -n -t tmpfs -o "nosuid,nodev,mode=$mode" pipelock-private "$stage"
  while [ "$k" -gt 0 ]; do
    kept=$stage/\${1#"$dir"/}
    if [ -d "$1" ]; then
      (umask 022 && mkdir -p "$kept")
    else
      (umask 022 && mkdir -p "\${kept%/*}" && : > "$kept")
    fi
    "$mount_bin" -n --bind "$1" "$kept"
    k=$((k - 1)); shift
  done
  if [ "$stage" != "$dir" ]; then "$mount_bin" -n --move "$stage" "$dir"; fi
done
# Lock files (/var/lock leads here).
mkdir -m 1777 /run/lock
# POSIX message queues: the host's /dev/mqueue shows the host's IPC namespace, a new mount the
# agent's own.
if [ -d /dev/mqueue ]; then
  "$mount_bin" -n -t mqueue -o nosuid,nodev,noexec pipelock-mqueue /dev/mqueue
fi
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ -d "$1" ]; then
    "$mount_bin" -n -t tmpfs -o ro,nosuid,nodev,noexec,mode=0555,size=4k pipelock-masked "$1"
  elif [ -e "$1" ]; then
    "$mount_bin" -n --bind /dev/null "$1"
  fi
  n=$((n - 1)); shift
done
# Descriptors the caller left open (a file, a socket) are not the agent's to use.
for fd in /proc/self/fd/*; do
  fd=\${fd##*/}
  if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
cd "$workdir"
exec "$@"
`;

// PID 1 of the namespace, as the agent: it runs the script as its child, passes the signals an
// agent sends it on, and exits as the script did (128+N after signal N). The script itself must
// not be PID 1: the kernel drops signals PID 1 has no handler for, so a script that ends itself
// with \`kill $$\` (or a child signalling its parent) would go on and report success. Orphans are
// reaped by bash as they end.
const AGENT_INIT = `"$0" "$@" &
child=$!
for signal in HUP INT QUIT TERM USR1 USR2; do
  trap "kill -$signal $child 2>/dev/null" "$signal"
done
# A trapped signal ends the wait early (128+N) while the script lives on: wait again.
while wait "$child"; status=$?; kill -0 "$child" 2>/dev/null; do :; done
exit "$status"
`;

/** argv that runs `bash SCRIPT ARGS` as the agent inside the boundary. */
export function agentArgv(
  tools: LaunchTools,
  plan: LaunchPlan,
  script: string,
  args: readonly string[],
): string[] {
  for (const dir of plan.privateDirs) {
    const stray = dir.keep.find((path) => path === dir.path || !isInsideDir(dir.path, path));
    if (stray !== undefined) throw new Error(`${stray} is not under ${dir.path}`);
  }
  return [
    // Killed with the run, however the run ends (SIGKILL too): its PID namespace goes with it
    // (unshare's --kill-child), instead of living on with the agent's write access while the
    // job's later steps run.
    tools.setpriv,
    '--pdeathsig',
    'KILL',
    '--',
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
    String(plan.privateDirs.length),
    ...plan.privateDirs.flatMap((dir) => [
      dir.path,
      dir.mode,
      dir.stage,
      String(dir.keep.length),
      ...dir.keep,
    ]),
    String(plan.masked.length),
    ...plan.masked,
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
      // Set again after the change of user, which clears it: the namespace's PID 1 (this
      // process, unless setsid forked) dies with unshare, and everything in it with PID 1.
      '--pdeathsig',
      'KILL',
      '--',
      tools.bash,
      '-c',
      AGENT_INIT,
      tools.bash,
      script,
      ...args,
    ]),
  ];
}
