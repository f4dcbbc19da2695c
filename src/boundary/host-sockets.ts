// Unix sockets on the host that the agent could connect to. A network namespace scopes only
// abstract sockets: a socket with a path is reachable from any namespace that sees the file,
// and the daemon behind it (snapd, a log forwarder, a database, a proxy) acts with the host's
// network. So, beyond the well-known side channels, every socket bound to a path in any network
// namespace on the host (a container's or a sandboxed service's too) that the agent's
// credentials could write to is masked when it starts.

import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { BoundaryError } from './command.js';

/**
 * The /proc/net/unix listing of every network namespace some process on the host is in,
 * joined: a socket bound in another namespace is as reachable by its path.
 */
export async function unixSocketListings(): Promise<string> {
  const namespaces = new Set<string>();
  const listings: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    // A process gone meanwhile, or a kernel thread, has nothing to add.
    const namespace = await readlink(`/proc/${pid}/ns/net`).catch(() => undefined);
    if (namespace === undefined || namespaces.has(namespace)) continue;
    const listing = await readFile(`/proc/${pid}/net/unix`, 'latin1').catch(() => undefined);
    if (listing === undefined) continue;
    namespaces.add(namespace);
    listings.push(listing);
  }
  return listings.join('\n');
}

// "Num: RefCount Protocol Flags Type St Inode[ Path]"; the path is everything after one space.
const ENTRY = /^[0-9a-f]+: [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{4} [0-9A-F]{2} +\d+ (.+)$/;
/** The longest path a unix socket can be bound to (sun_path's 108 bytes). */
const MAX_SOCKET_PATH_BYTES = 108;

/**
 * Every path a socket bound in /proc/net/unix may have (read as latin1, so each character is
 * one byte of the path). The kernel prints a path's bytes as they are: one holding a newline
 * goes on over the next lines, which may even read as entries of their own. So each entry's
 * path is taken alone and joined with each following line in turn, up to the longest path a
 * socket can have; readings that name no socket fall away when the file is looked up.
 * Abstract names (`@…`) are left out: the agent's namespace cannot reach them. A relative path
 * names a file relative to its binder's directory, which the listing does not give: it is
 * left out too.
 */
export function boundSocketPaths(procNetUnix: string): string[] {
  const lines = procNetUnix.split('\n');
  const paths = new Set<string>();
  lines.forEach((line, at) => {
    let path = ENTRY.exec(line)?.[1];
    if (path === undefined || !path.startsWith('/')) return;
    for (let next = at + 1; path.length <= MAX_SOCKET_PATH_BYTES; next++) {
      paths.add(path);
      const following = lines[next];
      if (following === undefined) break;
      path = `${path}\n${following}`;
    }
  });
  return [...paths];
}

/**
 * Whether the agent might connect to a socket file (write permission is what connect needs).
 * Conservative: any group write bit counts, whatever the group, since the agent's own group or
 * an ACL (whose mask shows in the group bits) may grant it; one the agent owns, it can chmod.
 */
export function mayConnect(socket: Pick<Stats, 'mode' | 'uid'>, agentUid: number): boolean {
  return socket.uid === agentUid || (socket.mode & 0o022) !== 0;
}

/**
 * The sockets bound to paths in this (the host's) network namespace that the agent could
 * connect to, as paths to mask. A path that cannot be passed on as text (not UTF-8) stops
 * the run rather than staying open.
 */
export async function connectableHostSockets(listing: string, agentUid: number): Promise<string[]> {
  const found: string[] = [];
  for (const latin1 of boundSocketPaths(listing)) {
    const bytes = Buffer.from(latin1, 'latin1');
    const stats = await lstat(bytes).catch(() => undefined);
    if (!stats?.isSocket() || !mayConnect(stats, agentUid)) continue;
    const path = bytes.toString('utf8');
    if (!Buffer.from(path, 'utf8').equals(bytes)) {
      throw new BoundaryError(
        `the unix socket ${JSON.stringify(latin1)} is reachable by the agent and its path is not UTF-8, so it cannot be masked; remove it or make it unwritable by others before the run`,
      );
    }
    found.push(path);
  }
  return found;
}
