// Probes run as the agent, inside the boundary, before the script: each checks one structural
// property and prints one line. Nothing is sent anywhere but the namespace's own loopback.

export interface ProbePlan {
  readonly uid: number;
  readonly gid: number;
  readonly proxyPort: number;
  /** Files the agent must not be able to read (signing key, CA key, the caller's key file). */
  readonly secretFiles: readonly string[];
  /** Directories the agent must not be able to write (evidence). */
  readonly protectedDirs: readonly string[];
  /** Paths that must not be sockets inside the boundary. */
  readonly masked: readonly string[];
}

// Each probe prints "ok NAME" or "fail NAME: DETAIL". Arguments: uid gid port, then three
// counted lists: secret files, protected dirs, masked paths.
export const PROBE_SCRIPT = `set -u
shopt -s nullglob
ok() { printf 'ok %s\\n' "$1"; }
fail() { printf 'fail %s: %s\\n' "$1" "$2"; }
uid=$1 gid=$2 port=$3; shift 3
# Builtins only: every probe reads /proc and /sys itself, so the probes cost no process starts.

interfaces=(/sys/class/net/*)
[ "\${interfaces[*]}" = /sys/class/net/lo ] && ok interfaces || fail interfaces "expected only lo, found \${interfaces[*]}"

mapfile -t v4 < /proc/net/route
v6=0
while read -r -a route; do [ "\${route[9]}" != lo ] && v6=$((v6 + 1)); done < /proc/net/ipv6_route
[ "\${#v4[@]}" -le 1 ] && [ "$v6" = 0 ] && ok routes || fail routes "$(( \${#v4[@]} - 1 )) IPv4 and $v6 IPv6 routes beyond lo"

caps='' nnp='' ids='' groups='' seccomp=''
while read -r key value rest; do
  case $key in
    CapInh:|CapPrm:|CapEff:|CapBnd:|CapAmb:) [ "$value" != 0000000000000000 ] && caps+="$key$value " ;;
    NoNewPrivs:) nnp=$value ;;
    Seccomp:) seccomp=$value ;;
    Uid:|Gid:) ids+="$value $rest " ;;
    Groups:) groups="$value $rest" ;;
  esac
done < /proc/self/status
[ -z "$caps" ] && ok capabilities || fail capabilities "non-zero sets: $caps"
[ "$nnp" = 1 ] && ok no_new_privs || fail no_new_privs "NoNewPrivs is $nnp"
[ "$seccomp" = 2 ] && ok seccomp || fail seccomp "Seccomp is $seccomp; expected 2 (a filter)"
read -r -a idlist <<< "$ids"
read -r -a grouplist <<< "$groups"
[ "\${idlist[*]}" = "$uid $uid $uid $uid $gid $gid $gid $gid" ] && [ "\${#grouplist[@]}" = 0 ] && ok identity ||
  fail identity "uids and gids are \${idlist[*]}, groups \${grouplist[*]}; expected uid $uid, gid $gid, no groups"

[ -r . ] && [ -x . ] && ok workdir_readable ||
  fail workdir_readable "uid $uid cannot list the working directory $PWD: make it readable by other users (chmod o+rX) or choose another"

# No controlling terminal (new session) and nothing inherited beyond stdio and this script.
if { : < /dev/tty; } 2>/dev/null; then fail no_terminal "/dev/tty opens: the agent has a controlling terminal"; else ok no_terminal; fi
fds=(/proc/self/fd/*)
extra=''
for fd in "\${fds[@]}"; do
  fd=\${fd##*/}
  # The directory the listing read is closed again by now.
  case $fd in 0|1|2|255) ;; *) [ -e "/proc/self/fd/$fd" ] && extra+="$fd " ;; esac
done
[ -z "$extra" ] && ok descriptors || fail descriptors "inherited open descriptors: $extra"

# /run is the agent's own: no host daemon's socket, only this run's directories and lock files.
shopt -s dotglob
entries=(/run/*)
shopt -u dotglob
[ "\${entries[*]}" = '/run/lock /run/pipelock-egress' ] && ok private_run ||
  fail private_run "/run holds \${entries[*]}; expected only lock and pipelock-egress"

mapfile -d '' init < /proc/1/cmdline
case "\${init[*]}" in *pipelock-probe*) ok pid_namespace ;; *) fail pid_namespace "pid 1 is \${init[*]}" ;; esac

n=$1; shift
for ((i = 0; i < n; i++)); do
  # A masked file reads as empty (/dev/null); any byte read is a leak.
  if { IFS= read -r -n 1 -d '' byte < "$1"; } 2>/dev/null; then fail secrets_unreadable "$1 is readable"; else ok secrets_unreadable; fi
  shift
done
n=$1; shift
for ((i = 0; i < n; i++)); do
  if { : > "$1/pipelock-probe"; } 2>/dev/null || [ -w "$1" ]; then fail evidence_unwritable "$1 is writable"; else ok evidence_unwritable; fi
  shift
done
n=$1; shift
for ((i = 0; i < n; i++)); do
  if [ -S "$1" ]; then fail side_channels_masked "$1 is a socket"; else ok side_channels_masked; fi
  shift
done

if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
  printf 'GET /health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' >&3
  read -r -t 15 status <&3 || status='no answer within 15 s'
  exec 3<&-
  case "$status" in "HTTP/1.1 200"*) ok engine_health ;; *) fail engine_health "answered: $status" ;; esac
else
  fail engine_health "nothing listens on 127.0.0.1:$port inside the namespace"
fi
`;

export function probeArgs(plan: ProbePlan): string[] {
  return [
    String(plan.uid),
    String(plan.gid),
    String(plan.proxyPort),
    String(plan.secretFiles.length),
    ...plan.secretFiles,
    String(plan.protectedDirs.length),
    ...plan.protectedDirs,
    String(plan.masked.length),
    ...plan.masked,
  ];
}

export interface ProbeOutcome {
  readonly passed: readonly string[];
  readonly failed: readonly string[];
}

/** Reads the probe output; missing output or an unknown line is a failure, never a pass. */
export function readProbeOutput(output: string, exitCode: number | null): ProbeOutcome {
  const passed: string[] = [];
  const failed: string[] = [];
  for (const line of output.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('ok ')) passed.push(line.slice(3));
    else if (line.startsWith('fail ')) failed.push(line.slice(5));
    else failed.push(`unexpected probe output: ${line}`);
  }
  if (exitCode !== 0) failed.push(`the probe script exited ${exitCode}`);
  for (const name of [
    'interfaces',
    'routes',
    'capabilities',
    'no_new_privs',
    'seccomp',
    'identity',
    'pid_namespace',
    'no_terminal',
    'descriptors',
    'private_run',
    'workdir_readable',
    'engine_health',
  ]) {
    if (!passed.includes(name) && !failed.some((f) => f.startsWith(`${name}:`)))
      failed.push(`${name}: did not report`);
  }
  return { passed, failed };
}
