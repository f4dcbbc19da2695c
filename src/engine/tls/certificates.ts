// X.509 certificates for TLS interception, built with the ASN.1 structures of RFC 5280 and
// signed by the caller (ECDSA P-256 with SHA-256). Pure: keys, clock and serial come in.

import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/asn1-x509';
import { createHash } from 'node:crypto';
import type { LeafName, LeafNames } from './leaf-names.js';

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

export interface LeafTemplate {
  /** DER SubjectPublicKeyInfo of the key every leaf certifies. */
  readonly leafPublicKey: Uint8Array;
  readonly issuer: x509.Name;
  readonly validity: Validity;
}

/**
 * Issues server certificates for one CA. Every leaf of a run shares its issuer, validity,
 * key and all extensions but one, so those are encoded once; minting a leaf encodes only its
 * serial, subject and subjectAltName, then signs.
 */
export class LeafIssuer {
  /** TBSCertificate fields between the serial and the subject: algorithm, issuer, validity. */
  private readonly afterSerial: Uint8Array;
  private readonly publicKey: Uint8Array;
  private readonly extensionsBeforeSan: Uint8Array;
  private readonly extensionsAfterSan: Uint8Array;

  constructor(
    template: LeafTemplate,
    private readonly caSigner: CertificateSigner,
  ) {
    const issuerSpki = AsnConvert.parse(caSigner.subjectPublicKey, x509.SubjectPublicKeyInfo);
    this.afterSerial = Buffer.concat([
      SIGNATURE_ALGORITHM,
      der(template.issuer),
      der(new x509.Validity(template.validity)),
    ]);
    this.publicKey = template.leafPublicKey;
    this.extensionsBeforeSan = Buffer.concat([
      der(extension(x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false }))),
      der(
        extension(
          x509.id_ce_keyUsage,
          true,
          new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature),
        ),
      ),
      der(extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage([SERVER_AUTH]))),
    ]);
    this.extensionsAfterSan = der(
      extension(
        x509.id_ce_authorityKeyIdentifier,
        false,
        new x509.AuthorityKeyIdentifier({ keyIdentifier: keyIdentifier(issuerSpki) }),
      ),
    );
  }

  /** A server certificate for one host's names (the first is the subject), signed by the CA. */
  issue(names: LeafNames, serial: Uint8Array): IssuedCertificate {
    const [first] = names;
    const subjectName = 'dnsName' in first ? first.dnsName : first.ipAddress;
    const tbs = tlv(
      SEQUENCE,
      VERSION_3,
      tlv(INTEGER, new Uint8Array(positiveSerial(serial))),
      this.afterSerial,
      // A CN longer than 64 characters is invalid; the SAN is what clients match anyway.
      der(distinguishedName(subjectName.length <= 64 ? subjectName : 'intercepted host')),
      this.publicKey,
      tlv(
        EXTENSIONS_TAG,
        tlv(
          SEQUENCE,
          this.extensionsBeforeSan,
          der(
            extension(
              x509.id_ce_subjectAltName,
              false,
              new x509.SubjectAlternativeName(names.map(generalName)),
            ),
          ),
          this.extensionsAfterSan,
        ),
      ),
    );
    const signature = this.caSigner.sign(tbs);
    return issued(
      tlv(SEQUENCE, tbs, SIGNATURE_ALGORITHM, tlv(BIT_STRING, Uint8Array.of(0), signature)),
    );
  }
}

function generalName(name: LeafName): x509.GeneralName {
  return new x509.GeneralName(
    'dnsName' in name ? { dNSName: name.dnsName } : { iPAddress: name.ipAddress },
  );
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
  return issued(new Uint8Array(AsnConvert.serialize(certificate)));
}

function issued(certificate: Uint8Array): IssuedCertificate {
  const der = Buffer.from(certificate);
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

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
/** TBSCertificate `extensions [3] EXPLICIT`. */
const EXTENSIONS_TAG = 0xa3;
/** TBSCertificate `version [0] EXPLICIT INTEGER 2` (v3). */
const VERSION_3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);
const SIGNATURE_ALGORITHM = der(new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }));

function der(value: unknown): Uint8Array {
  return new Uint8Array(AsnConvert.serialize(value));
}

/** A DER tag-length-value over already encoded contents (a leaf is far below 64 KiB). */
function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(contents);
  const length = body.length;
  if (length >= 0x10000) throw new Error(`a certificate field of ${length} bytes is too long`);
  const lengthBytes =
    length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, length >> 8, length & 0xff];
  return Buffer.concat([Uint8Array.of(tag, ...lengthBytes), body]);
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
