// The names an interception leaf certifies: the host the CONNECT was judged as, and the
// spelling the client will check the certificate against where that differs in a way no
// client folds itself (OpenSSL matches neither a trailing dot nor an IPv4-mapped IPv6
// address to the canonical form). Either way the same judged host.

import type { Host } from '../../policy/index.js';
import { formatIp } from '../../policy/ip.js';

/** A subjectAltName entry: a DNS name, or an IP address in text form. */
export type LeafName = { readonly dnsName: string } | { readonly ipAddress: string };

/** The subject's name first. */
export type LeafNames = readonly [LeafName, ...LeafName[]];

const IPV4_MAPPED = 0xffffn << 32n;

/** `authority` is the CONNECT target as the client sent it (`host:port`). */
export function leafNames(host: Host, authority: string): LeafNames {
  const spelled = authority.slice(0, authority.lastIndexOf(':'));
  if (host.kind === 'name') {
    const canonical = { dnsName: host.name };
    return spelled.endsWith('.') ? [canonical, { dnsName: `${host.name}.` }] : [canonical];
  }
  const canonical = { ipAddress: formatIp(host.ip) };
  if (host.ip.family === 4 && spelled.startsWith('[')) {
    const mapped = formatIp({ family: 6, value: IPV4_MAPPED | BigInt(host.ip.value) });
    return [canonical, { ipAddress: mapped }];
  }
  return [canonical];
}
