// The Audit Packet v0 JSON Schema (audit-packet-v0.schema.json, written from specs/receipts.md
// §10), compiled once for the tests that check packet.json.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
addFormats.default(ajv);

export const validatePacket = ajv.compile(
  JSON.parse(
    readFileSync(new URL('./audit-packet-v0.schema.json', import.meta.url), 'utf8'),
  ) as object,
);
