// X.509 certificates for TLS interception, built with the ASN.1 structures of RFC 5280 and
// signed by the caller (ECDSA P-256 with SHA-256). Pure: keys, clock and serial come in.

import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/asn1-x509';
import { createHash } from 'node:crypto';
import type { Host } from '../../policy/index.js';
import { formatIp } from '../../policy/ip.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';
const ORGANIZATION = '2.5.4.10';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export interface CertificateSigner {
  /** DER SubjectPublicKeyInfo of the key being certified. */
  readonly subjectPublicKey: Uint8Array;
  /** Signs the DER TBSCertificate: an ECDSA-Sig-Value (DER) over its SHA-256. */
  readonly sign: (tbs: Uint8Array) => Uint8Array;
}

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
}

/** The name a run CA and its leaves carry. */
export function distinguishedName(commonName: string): x509.Name {
  return new x509.Name([rdn(ORGANIZATION, 'pipelock-egress'), rdn(COMMON_NAME, commonName)]);
}

/** A self-signed CA that may sign end-entity certificates only (path length 0). */
export function buildCaCertificate(
  name: x509.Name,
  signer: CertificateSigner,
  validity: Validity,
  serial: Uint8Array,
): IssuedCertificate {
  const spki = AsnConvert.parse(signer.subjectPublicKey, x509.SubjectPublicKeyInfo);
  return issue(signer, {
    serial,
    issuer: name,
    subject: name,
    validity,
    spki,
    extensions: [
      extension(
        x509.id_ce_basicConstraints,
        true,
        new x509.BasicConstraints({ cA: true, pathLenConstraint: 0 }),
      ),
      extension(
        x509.id_ce_keyUsage,
        true,
        new x509.KeyUsage(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign),
      ),
      extension(
        x509.id_ce_subjectKeyIdentifier,
        false,
        new x509.SubjectKeyIdentifier(keyIdentifier(spki)),
      ),
    ],
  });
}

export interface LeafRequest {
  readonly host: Host;
  /** DER SubjectPublicKeyInfo of the leaf key. */
  readonly leafPublicKey: Uint8Array;
  readonly issuer: x509.Name;
  /** DER SubjectPublicKeyInfo of the CA (for the authority key identifier). */
  readonly issuerPublicKey: Uint8Array;
  readonly validity: Validity;
  readonly serial: Uint8Array;
}

/** A server certificate for one host (DNS name or IP address), signed by the run CA. */
export function buildLeafCertificate(
  request: LeafRequest,
  caSigner: CertificateSigner,
): IssuedCertificate {
  const { host } = request;
  const spki = AsnConvert.parse(request.leafPublicKey, x509.SubjectPublicKeyInfo);
  const issuerSpki = AsnConvert.parse(request.issuerPublicKey, x509.SubjectPublicKeyInfo);
  const subjectName = host.kind === 'name' ? host.name : formatIp(host.ip);
  const alternativeName =
    host.kind === 'name'
      ? new x509.GeneralName({ dNSName: host.name })
      : new x509.GeneralName({ iPAddress: formatIp(host.ip) });
  return issue(caSigner, {
    serial: request.serial,
    issuer: request.issuer,
    // A CN longer than 64 characters is invalid; the SAN is what clients match anyway.
    subject: distinguishedName(subjectName.length <= 64 ? subjectName : 'intercepted host'),
    validity: request.validity,
    spki,
    extensions: [
      extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false })),
      extension(x509.id_ce_keyUsage, true, new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature)),
      extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage([SERVER_AUTH])),
      extension(
        x509.id_ce_subjectAltName,
        false,
        new x509.SubjectAlternativeName([alternativeName]),
      ),
      extension(
        x509.id_ce_authorityKeyIdentifier,
        false,
        new x509.AuthorityKeyIdentifier({ keyIdentifier: keyIdentifier(issuerSpki) }),
      ),
    ],
  });
}

interface Unsigned {
  readonly serial: Uint8Array;
  readonly issuer: x509.Name;
  readonly subject: x509.Name;
  readonly validity: Validity;
  readonly spki: x509.SubjectPublicKeyInfo;
  readonly extensions: x509.Extension[];
}

function issue(signer: CertificateSigner, unsigned: Unsigned): IssuedCertificate {
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbsCertificate = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: positiveSerial(unsigned.serial),
    signature: algorithm,
    issuer: unsigned.issuer,
    subject: unsigned.subject,
    validity: new x509.Validity(unsigned.validity),
    subjectPublicKeyInfo: unsigned.spki,
    extensions: new x509.Extensions(unsigned.extensions),
  });
  const signature = signer.sign(new Uint8Array(AsnConvert.serialize(tbsCertificate)));
  const certificate = new x509.Certificate({
    tbsCertificate,
    signatureAlgorithm: algorithm,
    signatureValue: toArrayBuffer(signature),
  });
  const der = Buffer.from(AsnConvert.serialize(certificate));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return {
    der,
    pem: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
  };
}

/** RFC 5280 §4.1.2.2: a positive integer of at most 20 octets, minimally encoded. */
function positiveSerial(random: Uint8Array): ArrayBuffer {
  if (random.length < 8 || random.length > 19)
    throw new Error('a certificate serial takes 8 to 19 random bytes');
  const bytes = Uint8Array.from(random);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return toArrayBuffer(bytes);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: x509.SubjectPublicKeyInfo): OctetString {
  const digest = createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
  return new OctetString(toArrayBuffer(digest));
}

function rdn(type: string, value: string): x509.RelativeDistinguishedName {
  return new x509.RelativeDistinguishedName([
    new x509.AttributeTypeAndValue({ type, value: new x509.AttributeValue({ utf8String: value }) }),
  ]);
}

function extension(id: string, critical: boolean, value: unknown): x509.Extension {
  return new x509.Extension({
    extnID: id,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
