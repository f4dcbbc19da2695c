// Where distributions keep the system's CA bundle. The engine trusts the first that exists for
// upstream TLS; inside the boundary each one there is covered by the bundle with the run CA.
// Never a path from the environment (SSL_CERT_FILE): whoever starts the engine would widen its
// trust unseen.
export const SYSTEM_CA_BUNDLES: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS
  '/etc/ssl/cert.pem', // Alpine
];
