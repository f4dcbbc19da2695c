// Secret scanning. Every request's URL (and a tunnel's host) is scanned before the engine
// resolves or contacts anything, so a secret in a path, a query or a subdomain never leaves;
// headers, bodies and WebSocket messages are scanned where the engine can see them.

import type { Destination } from '../../policy/destination.js';
import { secretMayGo, type Host, type Policy, type RequestTarget } from '../../policy/index.js';
import { firstFinding, redactFindings, type Detector } from './detectors.js';
import { withinTime } from './time-bound.js';
import { withUnicodeFolded } from './unicode-folding.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { base64Runs, decodedViews, DecodingBudgetExceeded } from './decoded-views.js';

/** The value of a `secrets:`-bound variable and where it may be sent. */
export interface BoundSecret {
  readonly env: string;
  readonly value: string;
  readonly allow: readonly Destination[];
}

/** The policy's `secrets:` bindings with their values (a missing one binds nothing). */
export function boundSecrets(
  policy: Pick<Policy, 'secrets'>,
  values: Readonly<Record<string, string | undefined>> = {},
): BoundSecret[] {
  return policy.secrets.map(({ env, allow }) => ({ env, value: values[env] ?? '', allow }));
}

export interface DlpFinding {
  /** The detector's name, `secret:<ENV>` for a bound secret, or UNSCANNABLE. */
  readonly detector: string;
  /** Where it was seen: `URL`, `host name`, `header <name>`, `body`, `WebSocket message`. */
  readonly where: string;
  /** Why the text could not be scanned (UNSCANNABLE only): what cannot be scanned is not sent. */
  readonly failure?: string;
}

export const UNSCANNABLE = 'unscannable';

interface Finding extends DlpFinding {
  /** The spellings to cut out of a recorded target: a bound secret's, or what a detector matched. */
  readonly forms: readonly string[];
  /**
   * The forms are what a detector matched in each view: one that is not in the target as sent
   * (a credential spelled there with an escape, matched whole only once decoded) cannot be cut
   * out of it.
   */
  readonly matched?: true;
}

export interface UrlFinding extends DlpFinding {
  /** The target as it may be recorded: the secret replaced, or everything if it is spread out. */
  readonly redactedTarget: string;
}

/** A text to scan and where it came from. */
export interface View {
  readonly text: string;
  readonly where: string;
  /** False when its encoded runs are pieces of another view's (nothing new to decode). */
  readonly decodeRuns?: false;
  /**
   * A host name lowercased, without separators: bound secrets are compared in that spelling;
   * the detectors read the name as sent (its letters and digits joined can take the shape of
   * a credential: `asia-east2-maven` that of an AWS key id).
   */
  readonly compact?: true;
}

/**
 * Spellings of a secret that a request may carry: as it is, percent-encoded (as JavaScript and
 * as Python and git escape it, and as a form field, a space as `+`), in a JSON string (as
 * JavaScript and as Go write it), in a quoted CSV field, in base64 and in hex.
 */
export function secretForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const uri = encodeURIComponent(value);
  // `!'()*` escaped too: every byte but the unreserved ones, as Python's quote() writes it.
  const quoted = uri.replace(
    /[!'()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const json = JSON.stringify(value).slice(1, -1);
  const forms = [
    value,
    uri,
    quoted,
    // URLSearchParams, Python's urlencode and HTML forms.
    uri.replaceAll('%20', '+'),
    quoted.replaceAll('%20', '+'),
    json,
    json.replace(
      /[&<>\u2028\u2029]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ),
    value.replaceAll('"', '""'),
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
  ];
  return [...new Set(forms)];
}

/**
 * A bound value, and trimmed when that leaves something else: a pasted value brings a
 * newline or spaces along that a request's copy of it need not carry. Each in upper and in
 * lower case too: a value of one case (hex, a UUID) is all there, whatever case it is sent in.
 */
function valuesAsSent(value: string): string[] {
  const trimmed = value.trim();
  const values = trimmed === '' || trimmed === value ? [value] : [value, trimmed];
  return [...new Set(values.flatMap((text) => [text, text.toLowerCase(), text.toUpperCase()]))];
}

/**
 * Where content may end up: the request's target, or with it each target a path override
 * header (X-Original-URL) may route it to. A bound secret may go only where it may go to all.
 */
export type Reach = RequestTarget | readonly RequestTarget[];

export interface SecretScanner {
  /**
   * Every request's URL (a tunnel's host:port too), before anything is resolved; `to` is what
   * it parses to (undefined when it does not: no bound secret may go there).
   */
  scanUrl(target: string, to: RequestTarget | undefined): UrlFinding | undefined;
  /**
   * Headers, bodies and messages: bound secrets always, the detectors only where the
   * destination asks for scanning.
   */
  scanContent(views: readonly View[], to: Reach, detectors: boolean): DlpFinding | undefined;
  /** A bound secret may not go there: its traffic must be seen to be held to that. */
  guards(to: Reach): boolean;
  /**
   * A target as it may be recorded: every spelling of every bound secret cut out, encoded runs
   * that decode to one too, even on its way to an allowed destination (evidence travels
   * further than the request did).
   */
  redactBound(target: string): string;
  /**
   * Free text bound for the evidence (a refusal's reason, which may quote what the client
   * sent): every bound secret and everything a detector recognises cut out.
   */
  redactText(text: string): string;
}

export function createSecretScanner(
  detectors: readonly Detector[],
  secrets: readonly BoundSecret[],
  /** How long the policy's own patterns may take over one scan. */
  patternScanMs = DEFAULT_LIMITS.patternScanMs,
): SecretScanner {
  const bound = secrets
    .filter((secret) => secret.value !== '')
    .map((secret) => {
      const forms = [...new Set(valuesAsSent(secret.value).flatMap(secretForms))];
      // Host labels cannot hold every character and are compared in one case: a secret
      // smuggled through them loses its separators, and the host view its case, so the
      // compact view is compared in that spelling (long enough to be telling).
      const compact = forms
        .map((form) => withoutSeparators(form).toLowerCase())
        .filter((form) => form.length >= 8);
      // Longest first, so that no shorter spelling leaves part of a longer one behind.
      const longestFirst = [...forms].sort((a, b) => b.length - a.length);
      return { ...secret, forms, compact, longestFirst };
    });
  const redactSpelledBound = (target: string): string =>
    bound.reduce(
      (text, secret) =>
        secret.longestFirst.reduce(
          (cut, form) => cut.replaceAll(form, `[REDACTED:secret:${secret.env}]`),
          text,
        ),
      target,
    );
  const probeOf = (pattern: RegExp) => new RegExp(pattern.source, pattern.flags.replace('g', ''));
  const probes = detectors.map((detector) => {
    const probe = probeOf(detector.pattern);
    const decodedProbe = detector.decodedPattern ? probeOf(detector.decodedPattern) : probe;
    return { detector, probe, decodedProbe };
  });
  type Probe = (typeof probes)[number];
  const builtinProbes = probes.filter(({ detector }) => detector.fromPolicy !== true);
  const policyProbes = probes.filter(({ detector }) => detector.fromPolicy === true);
  /** The policy pattern running now, named if it runs out of time. */
  let running = '';
  /** Runs the policy's patterns under the time limit; without any, `none`. */
  const policyInTime = <T>(run: () => T, none: T): T =>
    policyProbes.length === 0
      ? none
      : withinTime(run, patternScanMs, () => `the policy pattern ${running}`);
  const allowedAt = (to: Reach | undefined) => {
    const targets = to === undefined ? [] : 'kind' in to ? [to] : to;
    return targets.length === 0
      ? []
      : bound.filter((secret) =>
          targets.every((target) =>
            secret.allow.some((destination) => secretMayGo(destination, target)),
          ),
        );
  };
  /**
   * The first finding in the views, then in what they decode to; `allowed` secrets are not
   * findings. A view that cannot be scanned (a policy pattern that throws on it or runs out of
   * time, more encoded text than can be decoded) is a finding too.
   */
  const findIn = (
    seen: readonly View[],
    allowed: readonly (typeof bound)[number][],
    withDetectors: boolean,
    /** A detector's match in every view, not only the first (a URL's, to cut it out). */
    everyMatch = false,
  ): Finding | undefined => {
    // Nothing to look for (no detectors, every bound secret allowed here): nothing to decode.
    if (!withDetectors && bound.every((secret) => allowed.includes(secret))) return undefined;
    // A bound secret on its way to an allowed destination is not a leak, whatever it looks
    // like: the detectors read the views without it. Cut out, not replaced by a separator, so
    // that one placed inside another credential does not break that one in two.
    const allowedForms = allowed
      .flatMap((secret) => secret.longestFirst)
      .sort((a, b) => b.length - a.length);
    const withoutAllowed = (views: readonly View[]): readonly View[] =>
      allowedForms.length === 0
        ? views
        : views.map((view) => ({
            ...view,
            text: allowedForms.reduce((text, form) => text.replaceAll(form, ''), view.text),
          }));
    let where = seen[0]?.where ?? '';
    const boundIn = (views: readonly View[]): Finding | undefined => {
      for (const secret of bound) {
        if (allowed.includes(secret)) continue;
        for (const view of views) {
          const candidates = view.compact ? secret.compact : secret.forms;
          if (candidates.some((candidate) => view.text.includes(candidate))) {
            return { detector: `secret:${secret.env}`, where: view.where, forms: secret.forms };
          }
        }
      }
      return undefined;
    };
    const detectedIn = (
      views: readonly View[],
      group: readonly Probe[],
      decoded = false,
    ): Finding | undefined => {
      for (const { detector, probe, decodedProbe } of group) {
        running = detector.name;
        for (const view of views) {
          if (view.compact) continue;
          where = view.where;
          const used = decoded ? decodedProbe : probe;
          const match = firstFinding(used, view.text);
          if (match === undefined) continue;
          const forms = everyMatch
            ? views.flatMap((other) =>
                other.compact ? [] : (firstFinding(used, other.text)?.slice(0, 1) ?? []),
              )
            : [match[0]];
          return {
            detector: detector.name,
            where: view.where,
            forms: [...new Set(forms)],
            matched: true,
          };
        }
      }
      return undefined;
    };
    // Decoded only when the views themselves hold nothing; the detectors read nothing at all
    // when they are not asked for.
    let decoded: readonly View[] | undefined;
    const decodings = () => (decoded ??= decodedViews(seen));
    const seenForDetectors = withDetectors ? withoutAllowed(seen) : [];
    let decodedClean: readonly View[] | undefined;
    const decodedForDetectors = () =>
      (decodedClean ??= withDetectors ? withoutAllowed(decodings()) : []);
    try {
      return (
        boundIn(seen) ??
        detectedIn(seenForDetectors, builtinProbes) ??
        boundIn(decodings()) ??
        detectedIn(decodedForDetectors(), builtinProbes, true) ??
        // The policy's patterns last, over everything at once: one time limit for the scan.
        (withDetectors
          ? policyInTime(
              () =>
                detectedIn(seenForDetectors, policyProbes) ??
                detectedIn(decodedForDetectors(), policyProbes, true),
              undefined,
            )
          : undefined)
      );
    } catch (error) {
      const at = error instanceof DecodingBudgetExceeded ? error.where : where;
      return { detector: UNSCANNABLE, where: at, forms: [], failure: (error as Error).message };
    }
  };
  const find = (
    views: readonly View[],
    to: Reach | undefined,
    withDetectors: boolean,
    everyMatch = false,
  ) => findIn(views, allowedAt(to), withDetectors, everyMatch);
  /**
   * Cuts every encoded run that decodes to a finding (bound secrets, and the detectors' too
   * when asked); the whole text when such a run is a wrapped blob, not spelled as one piece.
   */
  const cutEncoded = (text: string, withDetectors: boolean): string =>
    base64Runs(text).reduce((cut, run) => {
      const found = findIn([{ text: run, where: 'text' }], [], withDetectors);
      if (!found) return cut;
      const label = `[REDACTED:${found.detector}]`;
      return cut.includes(run) ? cut.replaceAll(run, label) : label;
    }, text);
  /**
   * A text whose percent-decodings or Unicode folding still hold a finding once its spellings
   * are cut (a secret spelled with escapes of its own: `%2b` for `+`, `/` left as it is, any
   * letter as `%61`; in fullwidth forms, or with zero-width characters inside) keeps nothing:
   * the finding cannot be cut out of the text as sent.
   */
  const cutHidden = (text: string, withDetectors: boolean): string => {
    const views = withUnicodeFolded([
      { text, where: 'text' },
      ...decodedReadings(text).map((decoded) => ({ text: decoded, where: 'text' })),
    ]).slice(1);
    // A host name quoted in the text (an SNI, a Host header, a target's host) is read as the
    // URL scan reads one: a secret split over its labels is whole there.
    if (text.includes('.')) {
      views.push(
        { text: text.replaceAll('.', ''), where: 'text' },
        { text: withoutSeparators(text).toLowerCase(), where: 'text', compact: true },
      );
    }
    if (views.length === 0) return text;
    const found = findIn(views, [], withDetectors);
    return found ? `[REDACTED:${found.detector}]` : text;
  };
  const redactBound = (target: string): string =>
    cutHidden(cutEncoded(redactSpelledBound(target), false), false);
  /** A built-in detector matching in a decoding of `text` what `text` does not spell out. */
  const unspelledMatch = (text: string): string | undefined => {
    for (const decoded of decodedReadings(text)) {
      for (const { detector, probe } of builtinProbes) {
        const match = firstFinding(probe, decoded)?.[0];
        if (match !== undefined && !text.includes(match)) return detector.name;
      }
    }
    return undefined;
  };
  const redactText = (text: string): string => {
    const cutBy = (group: readonly Probe[], from: string): string =>
      group.reduce((cut, { detector, probe }) => {
        running = detector.name;
        return probe.test(cut) ? redactFindings(detector, cut) : cut;
      }, from);
    try {
      const spelled = redactSpelledBound(text);
      // A credential the text spells with an escape is matched whole only once decoded:
      // cutting what matches as sent would leave the rest of it behind.
      const unspelled = unspelledMatch(spelled);
      if (unspelled !== undefined) return `[REDACTED:${unspelled}]`;
      const cut = cutBy(builtinProbes, spelled);
      return cutHidden(
        cutEncoded(
          policyInTime(() => cutBy(policyProbes, cut), cut),
          true,
        ),
        true,
      );
    } catch (error) {
      // What cannot be scanned is not recorded either.
      return `[REDACTED:${UNSCANNABLE}: ${(error as Error).message}]`;
    }
  };
  return {
    scanUrl(target, to) {
      const found = find(urlViews(target, to?.host), to, true, true);
      // The finding stops the scan: any other secret in the URL is cut out as in free text.
      return (
        found && {
          ...found,
          redactedTarget: redactText(redactBound(redact(found, target))),
        }
      );
    },
    scanContent(views, to, scan) {
      const found = find(views, to, scan);
      if (found === undefined) return undefined;
      const { forms: _forms, matched: _matched, ...finding } = found;
      return finding;
    },
    guards(to) {
      const allowed = allowedAt(to);
      return bound.some((secret) => !allowed.includes(secret));
    },
    redactBound,
    redactText,
  };
}

const HOST = 'host name';

/**
 * The URL as sent and percent-decoded, and its host name as a secret split over labels reads:
 * as sent without its dots (a credential format keeps its `_` and `-`), and lowercased without
 * any separator (a bound secret's compact spelling).
 */
function urlViews(target: string, host: Host | undefined): View[] {
  const views: View[] = withUnicodeFolded([
    { text: target, where: 'URL' },
    ...decodedReadings(target).map((decoded) => ({ text: decoded, where: 'URL' })),
  ]);
  if (host?.kind === 'name') {
    views.push({ text: hostAsSent(target).replaceAll('.', ''), where: HOST });
    views.push({ text: withoutSeparators(host.name), where: HOST, compact: true });
  }
  return views;
}

/** The host (and port) of a URL or a CONNECT authority, spelled as the client sent it. */
function hostAsSent(target: string): string {
  const scheme = target.indexOf('://');
  const rest = scheme >= 0 ? target.slice(scheme + 3) : target;
  const authority = /^[^/?#]*/.exec(rest)?.[0] ?? '';
  return authority.slice(authority.lastIndexOf('@') + 1);
}

/**
 * A text read as a query or form field reads it (`+` a space, then percent escapes:
 * URLSearchParams and Python's parse_qs read `a+b%2Bc/d` as `a b+c/d`) and percent-decoded with
 * its `+` kept (a URL in a JSON field: `%2F…+…`, as Go escapes a path): each reading that
 * differs from the text.
 */
export function decodedReadings(text: string): string[] {
  const form = text.replaceAll('+', ' ');
  if (form === text) return percentDecodings(text);
  const decodedForm = percentDecodings(form);
  // With no escape to undo, the form reading is the text with a space for each `+`.
  const formReadings = decodedForm.length === 0 ? [form] : decodedForm;
  return [...new Set([...formReadings, ...percentDecodings(text)])];
}

/**
 * A text percent-decoded once, twice and three times: each spelling that differs from the one
 * before, so that encoding a secret twice (`%2567` for `g`) hides nothing.
 */
export function percentDecodings(text: string): string[] {
  const decodings: string[] = [];
  let current = text;
  for (let round = 0; round < 3; round++) {
    const next = percentDecode(current);
    if (next === current) break;
    decodings.push((current = next));
  }
  return decodings;
}

/**
 * Each run of escapes read as the UTF-8 bytes it spells, an invalid sequence as U+FFFD (as
 * origins read it, or as raw bytes): kept as sent, one stray `%FF` would hide the whole run.
 */
function percentDecode(text: string): string {
  return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) =>
    Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'),
  );
}

function redact({ detector, forms, matched }: Finding, target: string): string {
  const label = `[REDACTED:${detector}]`;
  // A match that is not in the target as sent is longer there than any spelling of it the
  // target holds: cutting those would leave the rest of the credential behind.
  if (matched && forms.some((form) => !target.includes(form))) return label;
  const replaced = forms.reduce((text, form) => text.replaceAll(form, label), target);
  // A secret that is not spelled out in the target as sent (only decoded, or split over host
  // labels) cannot be cut out of it: then nothing of the target is shown.
  const leftover = forms.some(
    (form) =>
      decodedReadings(replaced).some((decoded) => decoded.includes(form)) ||
      withoutSeparators(replaced).toLowerCase().includes(withoutSeparators(form).toLowerCase()),
  );
  return replaced === target || leftover ? label : replaced;
}

function withoutSeparators(text: string): string {
  return text.replace(/[.\-_]/g, '');
}
