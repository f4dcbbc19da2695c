// Name resolution for the engine: pins first (`--resolve host:ip`), then the system
// resolver. The engine connects to the address checked here; nothing resolves twice.

import { lookup } from 'node:dns/promises';
import type { Host } from '../policy/index.js';
import type { IpAddress } from '../policy/ip.js';
import type { NamePin } from './name-pin.js';
import { parseResolvedAddress } from './ssrf.js';

export interface Resolver {
  /** Every address of the host; rejects with a message naming the host when it has none. */
  resolve(host: Host): Promise<IpAddress[]>;
}

type Lookup = (hostname: string) => Promise<readonly { address: string }[]>;

const systemLookup: Lookup = (hostname) => lookup(hostname, { all: true, verbatim: true });

export function createResolver(
  pins: readonly NamePin[],
  lookupName: Lookup = systemLookup,
  timeoutMs = 5_000,
): Resolver {
  const pinned = new Map<string, IpAddress>();
  for (const pin of pins) pinned.set(pin.host.toLowerCase().replace(/\.$/, ''), pin.address);
  return {
    async resolve(host) {
      if (host.kind === 'ip') return [host.ip];
      const pin = pinned.get(host.name);
      if (pin) return [pin];
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`DNS resolution of ${host.name} timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        const answers = await Promise.race([lookupName(host.name), timeout]);
        return answers.flatMap(({ address }) => {
          const ip = parseResolvedAddress(address);
          return ip ? [ip] : [];
        });
      } catch (error) {
        throw new Error(
          `DNS resolution error for ${host.name}: ${(error as { code?: string }).code ?? (error as Error).message}`,
          { cause: error },
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
