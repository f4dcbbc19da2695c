// Reading JSON into, and writing JSON from, a description of a Go struct: fixed field order,
// `omitempty` rules and Go's zero values. The receipt types are described in action-record.ts.
import { compactRaw, goString } from './go-json.js';
import { formatRfc3339Nano, GO_ZERO_TIMESTAMP, parseGoTime } from './go-time.js';
import type { JsonDocument, JsonNode } from './json.js';
import { describeKind, rawText } from './json.js';

export type FieldKind =
  | { readonly type: 'string' }
  | { readonly type: 'bool' }
  | { readonly type: 'int'; readonly min: bigint; readonly max: bigint; readonly goType: string }
  /** A small int kept as a JS number (versions, taint level). */
  | {
      readonly type: 'smallint';
      readonly min: number;
      readonly max: number;
      readonly goType: string;
    }
  | { readonly type: 'time' }
  | { readonly type: 'strings' }
  | { readonly type: 'intMap' }
  | { readonly type: 'struct'; readonly schema: StructSchema }
  | { readonly type: 'structs'; readonly schema: StructSchema }
  /** Any JSON, kept as its source text (present even when `null`) and written compacted. */
  | { readonly type: 'raw' };

export interface FieldSchema {
  readonly key: string;
  readonly kind: FieldKind;
  /** Go writes the field even when zero (no `omitempty`). */
  readonly required: boolean;
}

export interface StructSchema {
  readonly fields: readonly FieldSchema[];
}

export type GoValue =
  | string
  | boolean
  | bigint
  | number
  | readonly string[]
  | null
  | Readonly<Record<string, bigint>>
  | GoStruct
  | readonly GoStruct[];
export type GoStruct = { readonly [key: string]: GoValue | undefined };

type IntKind = Extract<FieldKind, { readonly type: 'int' }>;

export const INT64: IntKind = {
  type: 'int',
  min: -(2n ** 63n),
  max: 2n ** 63n - 1n,
  goType: 'int64',
};
export const UINT64: IntKind = { type: 'int', min: 0n, max: 2n ** 64n - 1n, goType: 'uint64' };

export class StructureError extends Error {}

/** What decoding and encoding look up in a schema, worked out once: structs come per receipt. */
interface StructPlan {
  readonly byKey: ReadonlyMap<string, FieldSchema>;
  /** The fields in order, each with its key as Go writes it (quoted and escaped). */
  readonly named: readonly { readonly field: FieldSchema; readonly name: string }[];
  /**
   * The struct this schema encoded last, and its encoding. A verified receipt is encoded three
   * times in a row (signature digest, spelling check, chain hash) and decoded values are never
   * mutated, so remembering the last one per schema encodes each once.
   */
  last?: { readonly value: GoStruct; readonly encoded: string };
}

const plans = new WeakMap<StructSchema, StructPlan>();

function planOf(schema: StructSchema): StructPlan {
  let plan = plans.get(schema);
  if (!plan) {
    plan = {
      byKey: new Map(schema.fields.map((f) => [f.key, f])),
      named: schema.fields.map((field) => ({ field, name: goString(field.key) })),
    };
    plans.set(schema, plan);
  }
  return plan;
}

/** Decodes an object node; absent and `null` fields are left out of the result. */
export function decodeStruct(
  doc: JsonDocument,
  node: JsonNode,
  schema: StructSchema,
  path: string,
): GoStruct {
  if (node.kind !== 'object') {
    throw new StructureError(`${path}: expected an object, got ${describeKind(node)}`);
  }
  const { byKey } = planOf(schema);
  const out: Record<string, GoValue> = {};
  for (const [key, value] of node.members) {
    const field = byKey.get(key);
    if (!field) throw new StructureError(`${path}: unknown field ${JSON.stringify(key)}`);
    if (value.kind === 'null' && field.kind.type !== 'raw') continue;
    out[key] = decodeField(doc, value, field.kind, `${path}.${key}`);
  }
  return out;
}

function decodeField(doc: JsonDocument, node: JsonNode, kind: FieldKind, path: string): GoValue {
  switch (kind.type) {
    case 'string':
      return node.kind === 'string' ? node.value : mismatch(node, 'a string', path);
    case 'bool':
      return node.kind === 'bool' ? node.value : mismatch(node, 'a boolean', path);
    case 'int':
      return decodeInt(node, kind.min, kind.max, kind.goType, path);
    case 'smallint':
      return Number(decodeInt(node, BigInt(kind.min), BigInt(kind.max), kind.goType, path));
    case 'time': {
      if (node.kind !== 'string') return mismatch(node, 'an RFC 3339 timestamp string', path);
      const parsed = parseGoTime(rawText(doc, node).slice(1, -1));
      if (!parsed.ok) throw new StructureError(`${path}: ${parsed.error}`);
      return formatRfc3339Nano(parsed.time);
    }
    case 'strings':
      if (node.kind !== 'array') return mismatch(node, 'an array of strings', path);
      return node.items.map((item, i) => {
        if (item.kind === 'null') return '';
        return item.kind === 'string' ? item.value : mismatch(item, `a string at index ${i}`, path);
      });
    case 'intMap': {
      if (node.kind !== 'object') return mismatch(node, 'an object of integers', path);
      const out: Record<string, bigint> = {};
      for (const [key, value] of node.members) {
        out[key] =
          value.kind === 'null'
            ? 0n
            : decodeInt(value, INT64_MIN, INT64_MAX, 'int', `${path}.${key}`);
      }
      return out;
    }
    case 'struct':
      return decodeStruct(doc, node, kind.schema, path);
    case 'raw':
      return rawText(doc, node);
    case 'structs':
      if (node.kind !== 'array') return mismatch(node, 'an array of objects', path);
      return node.items.map((item, i) =>
        item.kind === 'null' ? {} : decodeStruct(doc, item, kind.schema, `${path}[${i}]`),
      );
  }
}

function mismatch(node: JsonNode, expected: string, path: string): never {
  throw new StructureError(`${path}: expected ${expected}, got ${describeKind(node)}`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A JSON number as Go reads an integer in [min, max] with strconv.Parse(U)Int (no fraction, no
 * exponent: `1.0` and `1e0` fail), or undefined.
 */
export function integerIn(
  node: JsonNode,
  { min, max }: { readonly min: bigint; readonly max: bigint },
): bigint | undefined {
  if (node.kind !== 'number') return undefined;
  const ok = min < 0n ? /^-?[0-9]+$/.test(node.text) : /^[0-9]+$/.test(node.text);
  const value = ok ? BigInt(node.text) : undefined;
  return value !== undefined && value >= min && value <= max ? value : undefined;
}

function decodeInt(node: JsonNode, min: bigint, max: bigint, goType: string, path: string): bigint {
  if (node.kind !== 'number') {
    throw new StructureError(`${path}: expected an integer (${goType}), got ${describeKind(node)}`);
  }
  const value = integerIn(node, { min, max });
  if (value === undefined) {
    throw new StructureError(`${path}: cannot use number ${node.text} as ${goType}`);
  }
  return value;
}

/** Writes a struct exactly as Go's encoding/json would marshal it. */
export function encodeStruct(value: GoStruct, schema: StructSchema): string {
  const plan = planOf(schema);
  if (plan.last?.value === value) return plan.last.encoded;
  let encoded = '';
  for (const { field, name } of plan.named) {
    const v = value[field.key];
    if (!field.required && isOmitted(v, field.kind)) continue;
    encoded += `${encoded === '' ? '{' : ','}${name}:${encodeField(v, field.kind)}`;
  }
  encoded = encoded === '' ? '{}' : `${encoded}}`;
  plan.last = { value, encoded };
  return encoded;
}

function isOmitted(v: GoValue | undefined, kind: FieldKind): boolean {
  if (v === undefined || v === null) return true;
  switch (kind.type) {
    case 'raw':
      return false;
    case 'struct':
      return false; // a non-nil pointer is written even when its struct is all zero
    case 'strings':
    case 'structs':
      return (v as readonly unknown[]).length === 0;
    case 'intMap':
      return Object.keys(v as object).length === 0;
    default:
      return v === '' || v === false || v === 0n || v === 0;
  }
}

function encodeField(v: GoValue | undefined, kind: FieldKind): string {
  switch (kind.type) {
    case 'string':
      return goString(typeof v === 'string' ? v : '');
    case 'bool':
      return v === true ? 'true' : 'false';
    case 'int':
    case 'smallint':
      return typeof v === 'bigint' || typeof v === 'number' ? String(v) : '0';
    case 'time':
      return goString(typeof v === 'string' ? goTimeSpelling(v) : GO_ZERO_TIMESTAMP);
    case 'strings':
      return Array.isArray(v) ? `[${(v as readonly string[]).map(goString).join(',')}]` : 'null';
    case 'intMap': {
      const map = (v ?? {}) as Readonly<Record<string, bigint>>;
      const keys = Object.keys(map).sort(compareUtf8);
      return `{${keys.map((k) => `${goString(k)}:${String(map[k] ?? 0n)}`).join(',')}}`;
    }
    case 'struct':
      return v === undefined || v === null ? 'null' : encodeStruct(v as GoStruct, kind.schema);
    case 'raw':
      return typeof v === 'string' ? compactRaw(v) : 'null';
    case 'structs':
      return Array.isArray(v)
        ? `[${(v as readonly GoStruct[]).map((s) => encodeStruct(s, kind.schema)).join(',')}]`
        : 'null';
  }
}

// Go re-prints a parsed time.Time; a string that is not RFC 3339 cannot come from a decoded
// record and is written unchanged (validation rejects it before signing).
function goTimeSpelling(value: string): string {
  const parsed = parseGoTime(value);
  return parsed.ok ? formatRfc3339Nano(parsed.time) : value;
}

/** Orders strings by their UTF-8 bytes (= code points), unlike JS's UTF-16 default sort. */
export function compareUtf8(a: string, b: string): number {
  const ca = Array.from(a, (ch) => ch.codePointAt(0) ?? 0);
  const cb = Array.from(b, (ch) => ch.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = (ca[i] ?? 0) - (cb[i] ?? 0);
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}
