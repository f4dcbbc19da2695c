// RFC 3339 timestamps the way Go's time.Time reads them from JSON and prints them with
// RFC3339Nano, including Go's error texts (recorder vectors pin them).

export interface GoTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** 0…999 999 999 (fractions beyond nanoseconds are truncated, as Go does). */
  readonly nanos: number;
  /** Zone offset east of UTC, in seconds. */
  readonly offsetSeconds: number;
}

export type GoTimeResult = { ok: true; time: GoTime } | { ok: false; error: string };

// Go's zero time.Time, which is what an absent or null timestamp decodes to.
const GO_ZERO_TIME: GoTime = {
  year: 1,
  month: 1,
  day: 1,
  hour: 0,
  minute: 0,
  second: 0,
  nanos: 0,
  offsetSeconds: 0,
};

const RFC3339_LAYOUT = '2006-01-02T15:04:05Z07:00';

/**
 * Parses the raw characters between a JSON string's quotes. Go does not unescape them first,
 * so `\u005a` is not a `Z`.
 */
export function parseGoTime(raw: string): GoTimeResult {
  const time = parseStrict(raw);
  return time ? { ok: true, time } : { ok: false, error: explainFailure(raw) };
}

export function formatRfc3339Nano(t: GoTime): string {
  const date = `${pad(t.year, 4)}-${pad(t.month, 2)}-${pad(t.day, 2)}`;
  const clock = `${pad(t.hour, 2)}:${pad(t.minute, 2)}:${pad(t.second, 2)}`;
  const fraction = t.nanos === 0 ? '' : '.' + pad(t.nanos, 9).replace(/0+$/, '');
  return `${date}T${clock}${fraction}${formatOffset(t.offsetSeconds)}`;
}

/** Go's zero time.Time as RFC3339Nano prints it (formatted once: it is compared per receipt). */
export const GO_ZERO_TIMESTAMP = formatRfc3339Nano(GO_ZERO_TIME);

export function toUtc(t: GoTime): GoTime {
  if (t.offsetSeconds === 0) return t;
  const d = new Date(0);
  d.setUTCFullYear(t.year, t.month - 1, t.day);
  d.setUTCHours(t.hour, t.minute, t.second - t.offsetSeconds, 0);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanos: t.nanos,
    offsetSeconds: 0,
  };
}

/** A JS Date as Go prints it in UTC (millisecond precision, trailing zeros trimmed). */
export function goTimestamp(date: Date): string {
  return formatRfc3339Nano({
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
    hour: date.getUTCHours(),
    minute: date.getUTCMinutes(),
    second: date.getUTCSeconds(),
    nanos: date.getUTCMilliseconds() * 1e6,
    offsetSeconds: 0,
  });
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function formatOffset(offsetSeconds: number): string {
  if (offsetSeconds === 0) return 'Z';
  const sign = offsetSeconds < 0 ? '-' : '+';
  const minutes = Math.floor(Math.abs(offsetSeconds) / 60);
  return `${sign}${pad(Math.floor(minutes / 60), 2)}:${pad(minutes % 60, 2)}`;
}

const THIRTY_DAY_MONTHS: readonly number[] = [4, 6, 9, 11];

function daysIn(month: number, year: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return THIRTY_DAY_MONTHS.includes(month) ? 30 : 31;
}

function isDigit(s: string, at: number): boolean {
  const code = s.charCodeAt(at);
  return code >= 0x30 && code <= 0x39;
}

/** The `width` ASCII digits at `at` as a number in [min, max], or undefined. */
function digitsAt(
  s: string,
  at: number,
  width: number,
  min: number,
  max: number,
): number | undefined {
  let n = 0;
  for (let i = at; i < at + width; i++) {
    if (!isDigit(s, i)) return undefined;
    n = n * 10 + s.charCodeAt(i) - 0x30;
  }
  return n >= min && n <= max ? n : undefined;
}

// Place values of a fraction's digits in nanoseconds; digits past the ninth are truncated.
const NANOS_PLACES: readonly number[] = [1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 100, 10, 1];

// Mirrors Go's parseRFC3339: the set of strings it accepts is the set Go's JSON decoder accepts.
// Read digit by digit (no slices or regular expressions): every decoded receipt passes here.
function parseStrict(s: string): GoTime | undefined {
  if (s.length < 19) return undefined;
  const year = digitsAt(s, 0, 4, 0, 9999);
  const month = digitsAt(s, 5, 2, 1, 12);
  if (year === undefined || month === undefined) return undefined;
  const day = digitsAt(s, 8, 2, 1, daysIn(month, year));
  const hour = digitsAt(s, 11, 2, 0, 23);
  const minute = digitsAt(s, 14, 2, 0, 59);
  const second = digitsAt(s, 17, 2, 0, 59);
  if (day === undefined || hour === undefined || minute === undefined || second === undefined) {
    return undefined;
  }
  if (s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') {
    return undefined;
  }
  let at = 19;
  let nanos = 0;
  if (s[at] === '.' && isDigit(s, at + 1)) {
    const first = ++at;
    for (; isDigit(s, at); at++) {
      nanos += (s.charCodeAt(at) - 0x30) * (NANOS_PLACES[at - first] ?? 0);
    }
  }
  const rest = s.slice(at);
  let offsetSeconds = 0;
  if (rest !== 'Z') {
    if (rest.length !== 6) return undefined;
    const hr = digitsAt(rest, 1, 2, 0, 23);
    const mm = digitsAt(rest, 4, 2, 0, 59);
    if (hr === undefined || mm === undefined) return undefined;
    if ((rest[0] !== '+' && rest[0] !== '-') || rest[3] !== ':') return undefined;
    offsetSeconds = (rest[0] === '-' ? -1 : 1) * (hr * 60 + mm) * 60;
  }
  return { year, month, day, hour, minute, second, nanos, offsetSeconds };
}

/** Go's time.quote: escapes `"` and `\`, and writes non-ASCII and control bytes as \xNN. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code >= 0x80) {
      for (const byte of new TextEncoder().encode(ch))
        out += '\\x' + byte.toString(16).padStart(2, '0');
    } else {
      out += ch === '"' || ch === '\\' ? '\\' + ch : ch;
    }
  }
  return out + '"';
}

// Go reports a failed strict parse with the error from time.Parse(RFC3339, …). This walks the
// same layout with the same rules to find the same first failure.
function explainFailure(value: string): string {
  const cannotParse = (rest: string, element: string): string =>
    `parsing time ${goQuote(value)} as ${goQuote(RFC3339_LAYOUT)}: cannot parse ${goQuote(rest)} as ${goQuote(element)}`;
  const outOfRange = (what: string): string =>
    `parsing time ${goQuote(value)}: ${what} out of range`;
  const isDigit = (s: string, i: number): boolean => {
    const c = s[i];
    return c !== undefined && c >= '0' && c <= '9';
  };
  const getNum = (s: string, fixed: boolean): [number, string] | undefined => {
    if (!isDigit(s, 0)) return undefined;
    if (!isDigit(s, 1)) return fixed ? undefined : [Number(s[0]), s.slice(1)];
    return [Number(s.slice(0, 2)), s.slice(2)];
  };

  let rest = value;
  const literal = (ch: string): boolean => {
    if (rest[0] !== ch) return false;
    rest = rest.slice(1);
    return true;
  };

  if (rest.length < 4 || !isDigit(rest, 0)) return cannotParse(rest, '2006');
  const yearText = rest.slice(0, 4);
  rest = rest.slice(4);
  if (!/^[0-9]{4}$/.test(yearText)) return cannotParse(rest, '2006');
  const year = Number(yearText);
  if (!literal('-')) return cannotParse(rest, '-');
  const month = getNum(rest, true);
  if (!month) return cannotParse(rest, '01');
  rest = month[1];
  if (month[0] < 1 || month[0] > 12) return outOfRange('month');
  if (!literal('-')) return cannotParse(rest, '-');
  const day = getNum(rest, true);
  if (!day) return cannotParse(rest, '02');
  rest = day[1];
  if (!literal('T')) return cannotParse(rest, 'T');
  const hour = getNum(rest, false);
  if (!hour) return cannotParse(rest, '15');
  rest = hour[1];
  if (hour[0] >= 24) return outOfRange('hour');
  if (!literal(':')) return cannotParse(rest, ':');
  const minute = getNum(rest, true);
  if (!minute) return cannotParse(rest, '04');
  rest = minute[1];
  if (minute[0] >= 60) return outOfRange('minute');
  if (!literal(':')) return cannotParse(rest, ':');
  const second = getNum(rest, true);
  if (!second) return cannotParse(rest, '05');
  rest = second[1];
  if (second[0] >= 60) return outOfRange('second');
  const fraction = /^[.,][0-9]+/.exec(rest);
  if (fraction) rest = rest.slice(fraction[0].length);
  if (rest[0] === 'Z') {
    rest = rest.slice(1);
  } else {
    if (rest.length < 6 || rest[3] !== ':') return cannotParse(rest, 'Z07:00');
    const hr = getNum(rest.slice(1, 3), true);
    const mm = getNum(rest.slice(4, 6), true);
    if (!hr || !mm || (rest[0] !== '+' && rest[0] !== '-')) return cannotParse(rest, 'Z07:00');
    rest = rest.slice(6);
    if (hr[0] > 24) return outOfRange('time zone offset hour');
    if (mm[0] > 60) return outOfRange('time zone offset minute');
  }
  if (rest.length > 0) return `parsing time ${goQuote(value)}: extra text: ${goQuote(rest)}`;
  if (day[0] < 1 || day[0] > daysIn(month[0], year)) return outOfRange('day');
  // time.Parse accepted what the strict reader refused (one-digit hour, comma fraction, zone
  // offset beyond 23:59): Go reports those with the element that was wrong.
  if (value[12] === ':') return cannotParse(value.slice(11, 12), '15');
  if (value[19] === ',') return cannotParse(',', '.');
  if (Number(value.slice(-5, -3)) >= 24) return outOfRange('timezone hour');
  if (Number(value.slice(-2)) >= 60) return outOfRange('timezone minute');
  return cannotParse(value, RFC3339_LAYOUT);
}
