import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, TLSSocket } from 'node:tls';
import { createServer, type AddressInfo } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { RunCertificateAuthority } from '../../src/engine/tls/run-ca.js';
import { leafNames } from '../../src/engine/tls/leaf-names.js';
import { formatHost, type Host } from '../../src/policy/index.js';
import { cleanup, tempDir } from './helpers.js';

// Whole seconds: certificate times carry no fractions.
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const ca = RunCertificateAuthority.create(now);
const dir = tempDir('pe-run-ca-');
after(() => cleanup(dir));
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, ca.certificatePem);

const NAME: Host = { kind: 'name', name: 'api.example.test' };
const IPV4: Host = { kind: 'ip', ip: { family: 4, value: 0x7f000001 } };
const IPV6: Host = { kind: 'ip', ip: { family: 6, value: 1n } };

/** The context for a CONNECT to `authority`, the host as the engine judged it. */
const contextFor = (host: Host, authority = `${formatHost(host)}:443`) =>
  ca.contextFor(leafNames(host, authority));

/** The certificate a TLS client is shown for `host` (the chain verified against the CA). */
async function presented(
  host: Host,
  authority?: string,
): Promise<{ cert: X509Certificate; pem: string }> {
  // As the engine does: a server-side TLS socket given the host's context directly.
  const server = createServer((raw) => {
    const tls = new TLSSocket(raw, { isServer: true, secureContext: contextFor(host, authority) });
    tls.on('error', () => raw.destroy());
    tls.on('secure', () => tls.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      ca: ca.certificatePem,
      ...(host.kind === 'name' ? { servername: host.name } : {}),
      // Identity is checked below with X509Certificate; here only the chain.
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    assert.equal(socket.authorized, true, String(socket.authorizationError));
    const raw = socket.getPeerX509Certificate();
    socket.destroy();
    if (raw === undefined) throw new Error('no peer certificate');
    return { cert: raw, pem: raw.toString() };
  } finally {
    server.close();
  }
}

test('the run CA is a P-256 CA limited to signing end-entity certificates', () => {
  const cert = new X509Certificate(ca.certificatePem);
  assert.equal(cert.ca, true);
  assert.equal(cert.subject, cert.issuer);
  assert.ok(cert.verify(cert.publicKey));
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const text = execFileSync('openssl', ['x509', '-in', caFile, '-noout', '-text']).toString();
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(text, /X509v3 Subject Key Identifier/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  // Backdated an hour for clients whose clocks run behind; a week ahead, past any CI job.
  assert.equal(new Date(cert.validFrom).getTime(), now.getTime() - 3600_000);
  assert.equal(new Date(cert.validTo).getTime(), now.getTime() + 7 * 24 * 3600_000);
});

for (const [what, host, check] of [
  ['a DNS name', NAME, (cert: X509Certificate) => cert.checkHost('api.example.test')],
  ['an IPv4 address', IPV4, (cert: X509Certificate) => cert.checkIP('127.0.0.1')],
  ['an IPv6 address', IPV6, (cert: X509Certificate) => cert.checkIP('::1')],
] as const) {
  test(`a leaf for ${what} verifies strictly against the run CA and names only that host`, async () => {
    const { cert, pem } = await presented(host);
    assert.ok(check(cert), cert.subjectAltName);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(new X509Certificate(ca.certificatePem)));
    assert.equal(cert.checkHost('other.example.test'), undefined);
    const leafFile = join(dir, `leaf-${host.kind}.pem`);
    writeFileSync(leafFile, pem);
    // OpenSSL's strict mode (what Python 3.13 turns on by default): key identifiers, critical
    // basic constraints, a proper serial.
    const verified = execFileSync('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      caFile,
      leafFile,
    ]).toString();
    assert.match(verified, /: OK$/m);
  });
}

test('a leaf is canonical DER, also for a name long enough to need multi-byte lengths', async () => {
  // 63-character labels: the SAN alone passes 128 bytes and the CN falls back to a fixed one.
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.test`;
  for (const host of [NAME, IPV4, IPV6, { kind: 'name', name: long } as const]) {
    const { cert } = await presented(host);
    const decoded = AsnConvert.parse(cert.raw, Certificate);
    assert.deepEqual(Buffer.from(AsnConvert.serialize(decoded)), cert.raw);
    if (host.kind === 'name') assert.equal(cert.checkHost(host.name), host.name);
  }
});

test('leaves are minted once per host and cached; each has its own serial', async () => {
  assert.equal(contextFor(NAME), contextFor({ kind: 'name', name: 'api.example.test' }));
  assert.notEqual(contextFor(NAME), contextFor(IPV4));
  assert.notEqual(contextFor(NAME), contextFor(NAME, 'api.example.test.:443'));
  const a = await presented({ kind: 'name', name: 'a.example.test' });
  const b = await presented({ kind: 'name', name: 'b.example.test' });
  assert.notEqual(a.cert.serialNumber, b.cert.serialNumber);
});

test('a CONNECT spelled with a trailing dot or as an IPv4-mapped address gets a leaf naming that spelling too', async () => {
  const dotted = (await presented(NAME, 'api.example.test.:443')).cert;
  assert.equal(dotted.checkHost('api.example.test.'), 'api.example.test.');
  assert.equal(dotted.checkHost('api.example.test'), 'api.example.test');
  assert.equal(dotted.subjectAltName, 'DNS:api.example.test, DNS:api.example.test.');
  const mapped = (await presented(IPV4, '[::ffff:127.0.0.1]:443')).cert;
  assert.equal(mapped.checkIP('::ffff:127.0.0.1'), '::ffff:127.0.0.1');
  assert.equal(mapped.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(mapped.checkIP('::ffff:127.0.0.2'), undefined);
  // Without the spelling, OpenSSL matches neither.
  const plain = (await presented(NAME)).cert;
  assert.equal(plain.checkHost('api.example.test.'), undefined);
  assert.equal((await presented(IPV4)).cert.checkIP('::ffff:127.0.0.1'), undefined);
});
