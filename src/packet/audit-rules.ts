// The rules that would have let an audit run through: every request that passed (allowed, or
// let through by audit mode) at its host and port, with the method it was judged as. Pure.
import type { ActionRecord } from '../receipts/index.js';
import { formatHost, METHODS } from '../policy/index.js';
import { parseRequestTarget } from '../policy/target.js';

/** The methods a destination was reached with, or `any`: no rule may name them. */
export type ReachedMethods = ReadonlySet<string> | 'any';

export interface PassedDestination {
  /** Canonical host: two spellings of one host are one destination. */
  readonly host: string;
  readonly port: number;
  readonly methods: ReachedMethods;
}

export interface PassedTraffic {
  /** By host, then port. */
  readonly destinations: readonly PassedDestination[];
  /** Whether a WebSocket handshake passed: the policy must enable them. */
  readonly webSockets: boolean;
}

/**
 * Tallies passed traffic receipt by receipt, in chain order. A tunnel counts once it has ended:
 * one the engine cut (its SNI named another host) passed nothing, an intercepted one passed the
 * requests seen inside it (each has its own receipt), and a relayed one passed requests no one
 * saw, so its rule may name no methods (which would have it intercepted).
 */
export class PassedTrafficTally {
  private readonly reached: Reached = new Map();
  /**
   * Tunnels admitted and not yet ended, by action id (which the engine gives a tunnel's
   * decision, a block that cuts it and its outcome; request ids start again with each engine
   * that continues a chain): where each goes.
   */
  private readonly tunnels = new Map<string, Authority>();
  private webSockets = false;

  add(record: ActionRecord): void {
    const passed = record.verdict === 'allow' || record.verdict === 'warn';
    const id = record.action_id;
    if (record.transport === 'connect') {
      const tunnel = this.tunnels.get(id);
      if (record.decision_phase === 'outcome') {
        this.tunnels.delete(id);
        if (tunnel && !/(?:^| )intercepted_requests=/.test(record.pattern ?? ''))
          reach(this.reached, tunnel, 'any');
      } else if (!passed) {
        this.tunnels.delete(id);
      } else {
        const authority = authorityOf(record.target);
        if (authority) this.tunnels.set(id, authority);
      }
      return;
    }
    if (!passed || record.decision_phase === 'outcome' || record.method === undefined) return;
    const authority = authorityOf(record.target);
    if (authority === undefined) return;
    // A WebSocket handshake is a GET to the rules that judge it.
    const webSocket = record.method === 'WS';
    if (webSocket) this.webSockets = true;
    reach(this.reached, authority, webSocket ? 'GET' : record.method);
  }

  /** What passed; a tunnel whose end the chain does not record counts as relayed. */
  passed(): PassedTraffic {
    const reached: Reached = new Map();
    for (const [key, d] of this.reached)
      reached.set(key, { ...d, methods: d.methods === 'any' ? 'any' : new Set(d.methods) });
    for (const tunnel of this.tunnels.values()) reach(reached, tunnel, 'any');
    const destinations = [...reached.values()].sort((a, b) =>
      a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1,
    );
    return { destinations, webSockets: this.webSockets };
  }
}

type Reached = Map<string, { host: string; port: number; methods: Set<string> | 'any' }>;

function reach(reached: Reached, authority: Authority, method: string): void {
  const key = `${authority.host}:${authority.port}`;
  const known = reached.get(key) ?? { ...authority, methods: new Set<string>() };
  reached.set(key, known);
  if (known.methods === 'any') return;
  // A method no rule can name (PROPFIND) passes only a rule that names none.
  if (method === 'any' || !(METHODS as readonly string[]).includes(method)) known.methods = 'any';
  else known.methods.add(method);
}

interface Authority {
  readonly host: string;
  readonly port: number;
}

/** A target's host (canonical) and port: a CONNECT authority, or a URL (its scheme's port by default). */
function authorityOf(target: string): Authority | undefined {
  const parsed = parseRequestTarget(target);
  if (!parsed.ok) return undefined;
  return { host: formatHost(parsed.target.host), port: parsed.target.port };
}

/**
 * The egress rules of a policy that would have let `passed` through, at most `max` of them: a
 * host reached on ports 80 and 443 alike gets one rule without a port (which covers both),
 * every other destination one naming its port.
 */
export function suggestedRules(passed: PassedTraffic, max: number): string[] {
  const rules: { destination: string; methods: ReachedMethods }[] = [];
  const byHost = new Map<string, PassedDestination[]>();
  for (const d of passed.destinations) byHost.set(d.host, [...(byHost.get(d.host) ?? []), d]);
  for (const [host, ports] of byHost) {
    const [first, second] = ports;
    if (
      ports.length === 2 &&
      first?.port === 80 &&
      second?.port === 443 &&
      sameMethods(first.methods, second.methods)
    )
      rules.push({ destination: host, methods: first.methods });
    else
      for (const { port, methods } of ports)
        rules.push({ destination: `${host}:${port}`, methods });
  }
  // Nothing passed: no rule, and a list still (an `egress:` with nothing under it is no list).
  const lines = ['version: "1.0"', 'mode: enforce', rules.length === 0 ? 'egress: []' : 'egress:'];
  for (const { destination, methods } of rules.slice(0, max)) {
    lines.push(`  - destination: ${JSON.stringify(destination)}`);
    if (methods !== 'any')
      lines.push(
        `    methods: [${[...methods]
          .sort()
          .map((m) => JSON.stringify(m))
          .join(', ')}]`,
      );
  }
  if (rules.length > max)
    lines.push(
      `  # … and ${rules.length - max} more rules: their destinations are in \`receipts.json\``,
    );
  if (passed.webSockets) lines.push('websocket:', '  enabled: true');
  lines.push('default_deny: true');
  return lines;
}

function sameMethods(a: ReachedMethods, b: ReachedMethods): boolean {
  if (a === 'any' || b === 'any') return a === b;
  return a.size === b.size && [...a].every((method) => b.has(method));
}
