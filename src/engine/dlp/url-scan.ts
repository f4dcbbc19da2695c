// URL-level DLP: every request's URL (and a tunnel's host) is scanned before the engine
// resolves or contacts anything, so a secret in a path, a query or a subdomain never leaves.

import { hostMatches, type Destination } from '../../policy/destination.js';
import type { Host } from '../../policy/index.js';
import type { Detector } from './detectors.js';

/** The value of a `secrets:`-bound variable and where it may be sent. */
export interface BoundSecret {
  readonly env: string;
  readonly value: string;
  readonly allow: readonly Destination[];
}

export interface DlpFinding {
  /** The detector's name, or `secret:<ENV>` for a bound secret. */
  readonly detector: string;
  /** Where it was seen: `URL` or `host name`. */
  readonly where: string;
  /** The target as it may be recorded: the secret replaced, or everything if it is spread out. */
  readonly redactedTarget: string;
}

/** Spellings of a secret that a URL may carry. */
export function secretForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = [
    value,
    encodeURIComponent(value),
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
  ];
  return [...new Set(forms)];
}

export interface UrlScanner {
  scan(target: string, host: Host, port: number): DlpFinding | undefined;
}

export function createUrlScanner(
  detectors: readonly Detector[],
  secrets: readonly BoundSecret[],
): UrlScanner {
  const bound = secrets
    .filter((secret) => secret.value !== '')
    .map((secret) => {
      const forms = secretForms(secret.value);
      // Host labels cannot hold every character: a secret smuggled through them loses its
      // separators, so the host view is compared without them (long enough to be telling).
      const compact = forms.map(withoutSeparators).filter((form) => form.length >= 8);
      return { ...secret, forms, compact };
    });
  return {
    scan(target, host, port) {
      const views = urlViews(target, host);
      for (const secret of bound) {
        if (secret.allow.some((destination) => allows(destination, host, port))) continue;
        for (const view of views) {
          const candidates = view.where === HOST ? secret.compact : secret.forms;
          if (candidates.some((candidate) => view.text.includes(candidate))) {
            return finding(`secret:${secret.env}`, view.where, target, secret.forms);
          }
        }
      }
      // A bound secret on its way to an allowed destination is not a leak, whatever it looks like.
      const allowedForms = bound
        .filter((s) => s.allow.some((d) => allows(d, host, port)))
        .flatMap((s) => s.forms);
      for (const detector of detectors) {
        for (const view of views) {
          for (const match of view.text.matchAll(detector.pattern)) {
            if (allowedForms.some((form) => form.includes(match[0]) || match[0].includes(form)))
              continue;
            return finding(detector.name, view.where, target, [match[0]]);
          }
        }
      }
      return undefined;
    },
  };
}

interface View {
  readonly text: string;
  readonly where: string;
}

const HOST = 'host name';

/** The URL as sent, decoded once, and its host name without separators (a secret split over labels). */
function urlViews(target: string, host: Host): View[] {
  const views: View[] = [{ text: target, where: 'URL' }];
  const decoded = percentDecode(target);
  if (decoded !== target) views.push({ text: decoded, where: 'URL' });
  if (host.kind === 'name') views.push({ text: withoutSeparators(host.name), where: HOST });
  return views;
}

function percentDecode(text: string): string {
  return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

function allows(destination: Destination, host: Host, port: number): boolean {
  return (
    hostMatches(destination.host, host) &&
    (destination.port === undefined || destination.port === port)
  );
}

function finding(
  detector: string,
  where: string,
  target: string,
  forms: readonly string[],
): DlpFinding {
  const label = `[REDACTED:${detector}]`;
  const replaced = forms.reduce((text, form) => text.replaceAll(form, label), target);
  // A secret that is not spelled out in the target as sent (only decoded, or split over host
  // labels) cannot be cut out of it: then nothing of the target is shown.
  const leftover = forms.some(
    (form) =>
      percentDecode(replaced).includes(form) ||
      withoutSeparators(replaced).includes(withoutSeparators(form)),
  );
  return { detector, where, redactedTarget: replaced === target || leftover ? label : replaced };
}

function withoutSeparators(text: string): string {
  return text.replace(/[.\-_]/g, '');
}
