// IP addresses as numbers, so that every textual notation of one address compares equal.

export type IpAddress =
  { readonly family: 4; readonly value: number } | { readonly family: 6; readonly value: bigint };

export interface Cidr {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly prefixLength: number;
}

const IPV4_MAPPED_PREFIX = 0xffffn << 32n;
const IPV6_BITS = 128;

/** Parses canonical dotted-quad text (as produced by the WHATWG host parser). */
export function parseDottedIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** Parses IPv6 text without brackets or zone (`::1`, `2001:db8::1`, `::ffff:1.2.3.4`). */
export function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  // An embedded IPv4 address may only be the last 32 bits of the whole address.
  const toGroups = (half: string, endsAddress: boolean): number[] | undefined => {
    if (half === '') return [];
    const groups: number[] = [];
    const pieces = half.split(':');
    for (const [index, piece] of pieces.entries()) {
      if (endsAddress && index === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseDottedIpv4(piece);
        if (v4 === undefined) return undefined;
        groups.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const head = toGroups(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? toGroups(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(group), 0n);
}

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it carries. */
export function ipv6Address(value: bigint): IpAddress {
  if (value >> 32n === IPV4_MAPPED_PREFIX >> 32n) {
    return { family: 4, value: Number(value & 0xffffffffn) };
  }
  return { family: 6, value };
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n)
    groups.push(Number((ip.value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function ipBits(ip: IpAddress): bigint {
  return ip.family === 4 ? BigInt(ip.value) : ip.value;
}

function familyWidth(family: 4 | 6): number {
  return family === 4 ? 32 : IPV6_BITS;
}

function hostMask(family: 4 | 6, prefixLength: number): bigint {
  return (1n << BigInt(familyWidth(family) - prefixLength)) - 1n;
}

export function maxPrefixLength(family: 4 | 6): number {
  return familyWidth(family);
}

/** The CIDR whose host bits are cleared, and whether any were set in `ip`. */
export function makeCidr(
  ip: IpAddress,
  prefixLength: number,
): { cidr: Cidr; hostBitsSet: boolean } {
  const bits = ipBits(ip);
  const mask = hostMask(ip.family, prefixLength);
  return {
    cidr: { family: ip.family, base: bits & ~mask, prefixLength },
    hostBitsSet: (bits & mask) !== 0n,
  };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  return (ipBits(ip) & ~hostMask(cidr.family, cidr.prefixLength)) === cidr.base;
}

/** Whether every address of `inner` is in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefixLength >= outer.prefixLength && cidrsOverlap(inner, outer);
}

/** Whether some address is in both networks (one holds the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const mask = ~hostMask(a.family, Math.min(a.prefixLength, b.prefixLength));
  return (a.base & mask) === (b.base & mask);
}

export function formatCidr(cidr: Cidr): string {
  const base: IpAddress =
    cidr.family === 4 ? { family: 4, value: Number(cidr.base) } : { family: 6, value: cidr.base };
  return `${formatIp(base)}/${cidr.prefixLength}`;
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && ipBits(a) === ipBits(b);
}
