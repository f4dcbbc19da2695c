// The agent's seccomp filter: sockets of the families an agent needs only. Network namespaces
// do not cover every family: AF_VSOCK talks to the hypervisor whatever the namespace, and
// io_uring can open sockets without calling socket(2). Kernel keyrings are refused too: they
// are per uid, not per namespace, and the agent's uid is the same in every run. A classic BPF
// program, built here and loaded by a few lines of Perl (perl-base is part of every Debian and
// Ubuntu system).

/** Address families an agent may open sockets of: files, IPv4, IPv6, netlink (`ip`, glibc). */
const ALLOWED_FAMILIES = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 } as const;

export interface SyscallTable {
  /** AUDIT_ARCH_* of the native ABI; any other ABI the kernel offers is refused whole. */
  readonly auditArch: number;
  readonly socket: number;
  readonly ioUringSetup: number;
  /** add_key, request_key, keyctl. */
  readonly keyrings: readonly number[];
  readonly prctl: number;
  readonly seccomp: number;
  /** x86-64 runs x32 calls under the native arch with this bit set: refused. */
  readonly x32Bit?: number;
}

export const SYSCALLS: Readonly<Record<string, SyscallTable>> = {
  x64: {
    auditArch: 0xc000003e,
    socket: 41,
    ioUringSetup: 425,
    keyrings: [248, 249, 250],
    prctl: 157,
    seccomp: 317,
    x32Bit: 0x40000000,
  },
  arm64: {
    auditArch: 0xc00000b7,
    socket: 198,
    ioUringSetup: 425,
    keyrings: [217, 218, 219],
    prctl: 167,
    seccomp: 277,
  },
};

/** This machine's table; preflight refuses an architecture without one. */
export function syscallsOf(arch: string): SyscallTable {
  const table = SYSCALLS[arch];
  if (table === undefined) throw new Error(`unreachable: preflight passed on ${arch}`);
  return table;
}

const EAFNOSUPPORT = 97;
const ENOSYS = 38;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;

// struct seccomp_data: nr (u32) at 0, arch (u32) at 4, args[0] (u64, low half first) at 16.
const NR = 0;
const ARCH = 4;
const ARG0 = 16;

type Instruction =
  | { readonly op: 'load'; readonly offset: number }
  | {
      readonly op: 'jeq' | 'jge';
      readonly value: number;
      readonly then: Label;
      readonly otherwise: Label;
    }
  | { readonly op: 'return'; readonly value: number }
  | { readonly op: 'label'; readonly name: Label };
type Label = 'next' | 'allow' | 'refuseCall';

function program(table: SyscallTable): Instruction[] {
  const jeq = (value: number, then: Label, otherwise: Label = 'next'): Instruction => ({
    op: 'jeq',
    value,
    then,
    otherwise,
  });
  return [
    { op: 'load', offset: ARCH },
    jeq(table.auditArch, 'next', 'refuseCall'),
    { op: 'load', offset: NR },
    ...(table.x32Bit === undefined
      ? []
      : [{ op: 'jge', value: table.x32Bit, then: 'refuseCall', otherwise: 'next' } as const]),
    jeq(table.ioUringSetup, 'refuseCall'),
    ...table.keyrings.map((call) => jeq(call, 'refuseCall')),
    // socket(2): its family is checked; every other call is allowed.
    jeq(table.socket, 'next', 'allow'),
    { op: 'load', offset: ARG0 },
    ...Object.values(ALLOWED_FAMILIES).map((family) => jeq(family, 'allow')),
    { op: 'return', value: RET_ERRNO | EAFNOSUPPORT },
    { op: 'label', name: 'allow' },
    { op: 'return', value: RET_ALLOW },
    { op: 'label', name: 'refuseCall' },
    { op: 'return', value: RET_ERRNO | ENOSYS },
  ];
}

/** The filter as an array of struct sock_filter (8 bytes each, little-endian). */
export function seccompFilter(table: SyscallTable): Buffer {
  const instructions = program(table);
  const positions = new Map<Label, number>();
  let pc = 0;
  for (const instruction of instructions) {
    if (instruction.op === 'label') positions.set(instruction.name, pc);
    else pc++;
  }
  const out = Buffer.alloc(pc * 8);
  pc = 0;
  const jump = (label: Label): number => {
    if (label === 'next') return 0;
    const offset = (positions.get(label) ?? -1) - pc - 1;
    if (offset < 0 || offset > 255) throw new Error(`unreachable: jump to ${label} out of range`);
    return offset;
  };
  for (const instruction of instructions) {
    if (instruction.op === 'label') continue;
    const at = pc * 8;
    if (instruction.op === 'load') {
      out.writeUInt16LE(0x20, at); // BPF_LD | BPF_W | BPF_ABS
      out.writeUInt32LE(instruction.offset, at + 4);
    } else if (instruction.op === 'return') {
      out.writeUInt16LE(0x06, at); // BPF_RET | BPF_K
      out.writeUInt32LE(instruction.value >>> 0, at + 4);
    } else {
      out.writeUInt16LE(instruction.op === 'jeq' ? 0x15 : 0x35, at); // BPF_JMP | JEQ/JGE | BPF_K
      out.writeUInt8(jump(instruction.then), at + 2);
      out.writeUInt8(jump(instruction.otherwise), at + 3);
      out.writeUInt32LE(instruction.value >>> 0, at + 4);
    }
    pc++;
  }
  return out;
}

// argv: the filter in hex, the prctl(2) and seccomp(2) numbers, then the command.
// PR_SET_NO_NEW_PRIVS (38) first: nothing started after it can shed the filter or gain
// privileges. Then seccomp(SECCOMP_SET_MODE_FILTER, 0, &{len, filter}); any failure stops the
// launch.
export const SECCOMP_LOADER = `use strict;
my ($hex, $prctl, $seccomp) = splice(@ARGV, 0, 3);
my $filter = pack('H*', $hex);
my $prog = pack('S x6', length($filter) / 8) . pack('p', $filter);
syscall($prctl, 38, 1, 0, 0, 0) == 0 or die "prctl(PR_SET_NO_NEW_PRIVS): $!\\n";
syscall($seccomp, 1, 0, $prog) == 0 or die "seccomp(SECCOMP_SET_MODE_FILTER): $!\\n";
exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n";
`;

/** argv that runs `command` under the filter of this machine's architecture. */
export function seccompArgv(
  perl: string,
  table: SyscallTable,
  command: readonly string[],
): string[] {
  return [
    perl,
    '-e',
    SECCOMP_LOADER,
    seccompFilter(table).toString('hex'),
    String(table.prctl),
    String(table.seccomp),
    ...command,
  ];
}
