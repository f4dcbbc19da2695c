// `tls: passthrough` rules beside a rule that needs to see inside TLS for some host and port
// they share. Rules are indexed by the names they cover, so that thousands of rules are
// compared in near-linear time rather than each with each.
import { formatHost } from './host.js';
import { patternsOverlap, type HostPattern } from './destination.js';
import { needsInspection, type InspectedRule } from './inspection.js';

export interface PortedRule extends InspectedRule {
  readonly ports: readonly number[];
}

/** For each passthrough rule in conflict: its index and the first conflicting rule's. */
export function passthroughConflicts(
  rules: readonly (PortedRule | undefined)[],
): Array<{ index: number; other: number }> {
  const inspecting = new NameIndex();
  rules.forEach((rule, index) => {
    if (rule !== undefined && needsInspection(rule)) inspecting.add(rule.destination.host, index);
  });
  const conflicts: Array<{ index: number; other: number }> = [];
  rules.forEach((rule, index) => {
    if (rule?.tls !== 'passthrough') return;
    const conflicting = inspecting.candidates(rule.destination.host).filter((candidate) => {
      const other = rules[candidate];
      return (
        other !== undefined &&
        patternsOverlap(other.destination.host, rule.destination.host) &&
        other.ports.some((port) => rule.ports.includes(port))
      );
    });
    if (conflicting.length > 0)
      conflicts.push({ index, other: conflicting.reduce((a, b) => Math.min(a, b)) });
  });
  return conflicts;
}

/**
 * Rules by host pattern: a name (or `*.suffix`) under its own name and, for those below it,
 * under each parent domain; addresses and ranges in one list (they are few).
 */
class NameIndex {
  private readonly at = new Map<string, number[]>();
  private readonly under = new Map<string, number[]>();
  private readonly addressed: number[] = [];

  add(pattern: HostPattern, index: number): void {
    const name = patternName(pattern);
    if (name === undefined) {
      this.addressed.push(index);
      return;
    }
    push(this.at, name, index);
    for (const suffix of suffixes(name)) push(this.under, suffix, index);
  }

  /** Rules whose pattern may overlap this one (a superset, to be checked one by one). */
  candidates(pattern: HostPattern): readonly number[] {
    const name = patternName(pattern);
    if (name === undefined) return this.addressed;
    // An exact name or a wildcard overlaps a rule at the name or at a parent domain;
    // a wildcard also those below it.
    const above = suffixes(name).flatMap((suffix) => this.at.get(suffix) ?? []);
    return pattern.kind === 'wildcard' ? [...above, ...(this.under.get(name) ?? [])] : above;
  }
}

function patternName(pattern: HostPattern): string | undefined {
  if (pattern.kind === 'wildcard') return pattern.suffix;
  if (pattern.kind === 'exact' && pattern.host.kind === 'name') return formatHost(pattern.host);
  return undefined;
}

/** `a.b.c`, `b.c`, `c`. */
function suffixes(name: string): string[] {
  const labels = name.split('.');
  return labels.map((_, start) => labels.slice(start).join('.'));
}

function push(map: Map<string, number[]>, key: string, index: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [index]);
  else list.push(index);
}
