// Connections upstream: one undici pool per checked address and name, bounded in number and in
// requests in flight.

import type { SecureContext } from 'node:tls';
import type { Dispatcher, Pool } from 'undici';
import { formatIp } from '../policy/ip.js';
import type { UpstreamTarget } from './forward.js';
import type { EngineLimits } from './limits.js';

/** Sends one request on the pool a slot was claimed from. */
export type SendUpstream = (options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

interface Undici {
  readonly Pool: typeof Pool;
  readonly request: typeof import('undici/lib/api/api-request.js');
}
let undici: Promise<Undici> | undefined;
let undiciLoaded: Undici | undefined;

/**
 * undici takes milliseconds to load, and the engine answers its ready line and `/health`
 * without it: it is loaded on first use (the engine starts that once it listens).
 */
export function loadUndici(): Promise<Undici> {
  return (undici ??= Promise.all([
    import('undici/lib/dispatcher/pool.js'),
    import('undici/lib/api/api-request.js'),
  ]).then(([pool, request]) => (undiciLoaded = { Pool: pool.default, request: request.default })));
}

interface Slot {
  readonly pool: Pool;
  inFlight: number;
}

/**
 * Connection pools per checked upstream address, with a cap on requests in flight to each and
 * on the number of pools: the least recently used idle pool is closed to make room, so an
 * agent that touches many hosts cannot grow the engine without bound.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Slot>();

  constructor(
    private readonly limits: EngineLimits,
    /** The trust store upstream TLS is verified against. */
    private readonly trust: () => SecureContext,
  ) {}

  /** Claims a slot for one request, or says why there is none. */
  async acquire(
    target: UpstreamTarget,
  ): Promise<
    { ok: true; send: SendUpstream; release: () => void } | { ok: false; reason: string }
  > {
    const loaded = undiciLoaded ?? (await loadUndici());
    const slot = this.slotFor(target, loaded);
    if (slot === undefined) {
      return {
        ok: false,
        reason: `too many upstreams in use at once (limit ${this.limits.maxUpstreams})`,
      };
    }
    if (slot.inFlight >= this.limits.maxRequestsPerUpstream) {
      return {
        ok: false,
        reason: `too many requests in flight to ${target.authority} (limit ${this.limits.maxRequestsPerUpstream})`,
      };
    }
    slot.inFlight++;
    let released = false;
    return {
      ok: true,
      send: (options) => loaded.request.call(slot.pool, options),
      release: () => {
        if (!released) slot.inFlight--;
        released = true;
      },
    };
  }

  /** Pools open now. */
  get size(): number {
    return this.pools.size;
  }

  /** The target's slot, made most recently used; a new one if there is room. */
  private slotFor(target: UpstreamTarget, loaded: Undici): Slot | undefined {
    const ip = formatIp(target.address);
    const origin = `${target.scheme}://${target.address.family === 6 ? `[${ip}]` : ip}:${target.port}`;
    const key = `${origin} ${target.hostname}`;
    let slot = this.pools.get(key);
    if (slot) {
      this.pools.delete(key);
    } else {
      if (!this.makeRoom()) return undefined;
      slot = this.newSlot(target, origin, loaded);
    }
    this.pools.set(key, slot);
    return slot;
  }

  private newSlot(target: UpstreamTarget, origin: string, loaded: Undici): Slot {
    const pool = new loaded.Pool(origin, {
      connections: this.limits.maxRequestsPerUpstream,
      connectTimeout: this.limits.upstreamTimeoutMs,
      headersTimeout: this.limits.upstreamTimeoutMs,
      bodyTimeout: this.limits.upstreamTimeoutMs,
      maxHeaderSize: this.limits.maxResponseHeaderBytes,
      connect:
        target.scheme === 'https'
          ? {
              servername: isIpLiteral(target.hostname) ? undefined : target.hostname,
              secureContext: this.trust(),
              rejectUnauthorized: true,
            }
          : {},
    });
    return { pool, inFlight: 0 };
  }

  /** Closes the least recently used idle pool when at the limit; false if every pool is busy. */
  private makeRoom(): boolean {
    if (this.pools.size < this.limits.maxUpstreams) return true;
    for (const [key, slot] of this.pools) {
      if (slot.inFlight > 0) continue;
      this.pools.delete(key);
      void slot.pool.close();
      return true;
    }
    return false;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map(({ pool }) => pool.destroy()));
    this.pools.clear();
  }
}

function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith('[') || /^[0-9.]+$/.test(hostname);
}
