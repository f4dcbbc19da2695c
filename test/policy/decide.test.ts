// decide(): one table row per request, each against a small policy or the reference policy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  decide,
  secretsKeptFrom,
  formatPolicyError,
  parsePolicy,
  type DecisionLayer,
  type Policy,
  type Verdict,
} from '../../src/policy/index.js';
import { parseRequestTarget } from '../../src/policy/target.js';

function load(text: string | Uint8Array, file: string): Policy {
  const result = parsePolicy(
    typeof text === 'string' ? new TextEncoder().encode(text) : text,
    file,
  );
  if (!result.ok) throw new Error(result.errors.map(formatPolicyError).join('\n'));
  return result.policy;
}

const POLICIES = {
  reference: load(
    readFileSync(fileURLToPath(new URL('../../fixtures/policies/reference.yaml', import.meta.url))),
    'reference.yaml',
  ),
  hosts: load(
    `version: "1.0"
egress:
  - destination: "api.github.com"
    methods: ["GET", "POST"]
    scan: true
  - destination: "*.githubusercontent.com"
  - destination: "registry.example.com:8443"
  - destination: "alt.example.com"
    ports: [8080, 443]
  - destination: "bücher.example"
  - destination: "trailing.example.com."
  - destination: "MiXeD.Example.COM"
`,
    'hosts.yaml',
  ),
  ips: load(
    `version: "1.0"
egress:
  - destination: "127.0.0.1"
  - destination: "[::1]:8080"
  - destination: "2001:db8::5"
  - destination: "10.0.0.0/8"
  - destination: "2001:db8:1::/48"
  - destination: "192.0.2.7/32"
  - destination: "2001:db8:2::9/128"
  - destination: "[2001:db8:3::1]"
  - destination: "192.168.1.1"
  - destination: "::ffff:198.51.100.1"
  - destination: "198.51.100.2:8443"
`,
    'ips.yaml',
  ),
  everything: load(
    `version: "1.0"
egress:
  - destination: "0.0.0.0/0"
  - destination: "::/0"
`,
    'everything.yaml',
  ),
  urls: load(
    `version: "1.0"
egress:
  - destination: "https://uploads.example.com/v1/"
  - destination: "http://plain.example.com:8080/api"
  - destination: "https://api.example.net/repos/acme"
  - destination: "https://gw.example.org"
  - destination: "https://[2001:db8::7]:8443/rpc/"
`,
    'urls.yaml',
  ),
  // A host some rule admits whole beside a plain http:// prefix: its TLS passes unseen.
  plainBeside: load(
    `version: "1.0"
egress:
  - destination: "http://both.example.com/api/"
  - destination: "both.example.com"
`,
    'plain-beside.yaml',
  ),
  paths: load(
    `version: "1.0"
egress:
  - destination: "files.example.com"
    paths: ["/a", "/pub/"]
    methods: ["GET"]
  - destination: "files.example.com:8080"
    paths: ["/caf%C3%A9/"]
`,
    'paths.yaml',
  ),
  layers: load(
    `version: "1.0"
egress:
  - destination: "multi.example.com"
    ports: [8443]
  - destination: "multi.example.com"
    paths: ["/api"]
    methods: ["GET"]
`,
    'layers.yaml',
  ),
  tunnels: load(
    `version: "1.0"
egress:
  - destination: "pinned.example.com"
    tls: passthrough
  - destination: "plain.example.com"
  - destination: "scanned.example.com"
    scan: true
  - destination: "*.paths.example.com"
    paths: ["/x"]
  - destination: "methods.example.com"
    methods: ["GET"]
  - destination: "https://prefix.example.com/v1/"
  - destination: "split.example.com"
    ports: [8443]
    scan: true
  - destination: "split.example.com"
`,
    'tunnels.yaml',
  ),
  audit: load(
    `version: "1.0"
mode: audit
egress:
  - destination: "api.github.com"
    methods: ["GET"]
    paths: ["/repos"]
`,
    'audit.yaml',
  ),
  open: load(
    `version: "1.0"
default_deny: false
egress:
  - destination: "api.github.com"
    methods: ["GET"]
`,
    'open.yaml',
  ),
} satisfies Record<string, Policy>;

type PolicyName = keyof typeof POLICIES;

interface Row {
  readonly policy: PolicyName;
  readonly method: string;
  readonly target: string;
  readonly verdict: Verdict;
  readonly layer: DecisionLayer | undefined;
  /** Index of the allowing (or closest refusing) rule; null = no rule. Unchecked when absent. */
  readonly rule?: number | null;
  readonly intercept?: boolean;
  readonly scan?: boolean;
  /** A substring of the reason. */
  readonly reason?: string;
}

type Extra = Pick<Row, 'rule' | 'intercept' | 'scan' | 'reason'>;
const allow = (policy: PolicyName, method: string, target: string, extra: Extra = {}): Row => ({
  policy,
  method,
  target,
  verdict: 'allow',
  layer: undefined,
  ...extra,
});
const block = (
  policy: PolicyName,
  method: string,
  target: string,
  layer: DecisionLayer,
  extra: Extra = {},
): Row => ({
  policy,
  method,
  target,
  verdict: 'block',
  layer,
  ...extra,
});
const warn = (
  policy: PolicyName,
  method: string,
  target: string,
  layer: DecisionLayer,
  extra: Extra = {},
): Row => ({
  policy,
  method,
  target,
  verdict: 'warn',
  layer,
  ...extra,
});

const ROWS: readonly Row[] = [
  // The reference policy.
  allow('reference', 'GET', 'https://api.github.com/repos/acme/widgets', { rule: 0, scan: true }),
  allow('reference', 'POST', 'https://api.github.com/graphql', { rule: 0, scan: true }),
  block('reference', 'DELETE', 'https://api.github.com/repos/acme/widgets', 'method', {
    rule: 0,
    reason: 'allowed: GET, POST',
  }),
  allow('reference', 'GET', 'https://registry.npmjs.org/left-pad', { rule: 1, scan: false }),
  block('reference', 'PUT', 'https://registry.npmjs.org/left-pad', 'method', { rule: 1 }),
  allow('reference', 'POST', 'https://docs.example.com/search', { rule: 2, scan: true }),
  block('reference', 'GET', 'https://example.com/', 'destination', {
    rule: null,
    reason: 'no egress rule allows example.com',
  }),
  allow('reference', 'CONNECT', 'api.github.com:443', { rule: 0, intercept: true }),
  block('reference', 'CONNECT', 'api.github.com:22', 'port', { rule: 0 }),

  // Exact hosts, methods and the default ports.
  allow('hosts', 'get', 'https://api.github.com/', { rule: 0, scan: true }),
  allow('hosts', 'Post', 'https://api.github.com/', { rule: 0 }),
  allow('hosts', 'GET', 'http://api.github.com/', { rule: 0 }),
  block('hosts', 'GET', 'https://api.github.com:8443/', 'port', {
    rule: 0,
    reason: 'allowed: 80, 443',
  }),
  block('hosts', 'PATCH', 'https://api.github.com/', 'method', { rule: 0 }),
  allow('hosts', 'GET', 'https://API.GITHUB.COM/', { rule: 0 }),
  allow('hosts', 'GET', 'https://api.github.com./', { rule: 0 }),
  block('hosts', 'GET', 'https://evil-api.github.com/', 'destination'),
  block('hosts', 'GET', 'https://api.github.com.evil.com/', 'destination'),
  block('hosts', 'GET', 'https://github.com/', 'destination'),
  block('hosts', 'GET', 'https://api.github.co/', 'destination'),
  allow('hosts', 'GET', 'ws://api.github.com/socket', { rule: 0 }),
  allow('hosts', 'GET', 'wss://api.github.com/socket', { rule: 0 }),
  block('hosts', 'GET', 'wss://api.github.com:8443/socket', 'port', { rule: 0 }),
  allow('hosts', 'CONNECT', 'api.github.com:443', { rule: 0, intercept: true }),
  allow('hosts', 'CONNECT', 'API.GitHub.com.:80', { rule: 0 }),
  // Wildcards: any depth, never the apex or a look-alike.
  allow('hosts', 'GET', 'https://raw.githubusercontent.com/acme/x', { rule: 1, scan: false }),
  allow('hosts', 'GET', 'https://a.b.c.githubusercontent.com/', { rule: 1 }),
  allow('hosts', 'GET', 'https://RAW.GitHubUserContent.com./', { rule: 1 }),
  block('hosts', 'GET', 'https://githubusercontent.com/', 'destination'),
  block('hosts', 'GET', 'https://evilgithubusercontent.com/', 'destination'),
  block('hosts', 'GET', 'https://raw.githubusercontent.com.evil.com/', 'destination'),
  allow('hosts', 'CONNECT', 'objects.githubusercontent.com:443', { rule: 1, intercept: false }),
  // host:port and ports lists.
  allow('hosts', 'GET', 'https://registry.example.com:8443/pkg', { rule: 2 }),
  allow('hosts', 'GET', 'http://registry.example.com:8443/pkg', { rule: 2 }),
  block('hosts', 'GET', 'https://registry.example.com/pkg', 'port', {
    rule: 2,
    reason: 'allowed: 8443',
  }),
  block('hosts', 'GET', 'http://registry.example.com/pkg', 'port', { rule: 2 }),
  allow('hosts', 'GET', 'http://alt.example.com:8080/', { rule: 3 }),
  allow('hosts', 'GET', 'https://alt.example.com/', { rule: 3 }),
  block('hosts', 'GET', 'http://alt.example.com/', 'port', {
    rule: 3,
    reason: 'allowed: 8080, 443',
  }),
  // IDNA, trailing dots, case.
  allow('hosts', 'GET', 'https://xn--bcher-kva.example/', { rule: 4 }),
  allow('hosts', 'GET', 'https://bücher.example/', { rule: 4 }),
  allow('hosts', 'GET', 'https://BÜCHER.EXAMPLE./', { rule: 4 }),
  block('hosts', 'GET', 'https://bucher.example/', 'destination'),
  allow('hosts', 'CONNECT', 'bücher.example:443', { rule: 4 }),
  allow('hosts', 'GET', 'https://trailing.example.com/', { rule: 5 }),
  allow('hosts', 'GET', 'https://trailing.example.com./', { rule: 5 }),
  block('hosts', 'GET', 'https://trailing.example.com../', 'request'),
  allow('hosts', 'GET', 'https://mixed.example.com/', { rule: 6 }),
  // Malformed requests.
  block('hosts', 'GET', 'ftp://api.github.com/', 'request'),
  block('hosts', 'GET', 'api.github.com:443', 'request'),
  block('hosts', 'CONNECT', 'https://api.github.com/', 'request'),
  block('hosts', 'CONNECT', 'api.github.com', 'request'),
  block('hosts', 'CONNECT', 'api.github.com:0', 'request'),
  block('hosts', 'CONNECT', 'api.github.com:65536', 'request'),
  block('hosts', 'GET', 'not a url', 'request'),
  block('hosts', 'GET', 'https://exa mple.com/', 'request'),

  // IPv4 in every notation, in requests and in rules.
  allow('ips', 'GET', 'http://127.0.0.1/', { rule: 0 }),
  allow('ips', 'GET', 'http://2130706433/', { rule: 0 }),
  allow('ips', 'GET', 'http://0x7f.1/', { rule: 0 }),
  allow('ips', 'GET', 'http://0x7F000001/', { rule: 0 }),
  allow('ips', 'GET', 'http://0177.0.0.1/', { rule: 0 }),
  allow('ips', 'GET', 'http://127.1/', { rule: 0 }),
  allow('ips', 'GET', 'http://127.0.0.1./', { rule: 0 }),
  allow('ips', 'GET', 'http://[::ffff:127.0.0.1]/', { rule: 0 }),
  allow('ips', 'GET', 'http://[::ffff:7f00:1]/', { rule: 0 }),
  allow('ips', 'CONNECT', '2130706433:443', { rule: 0 }),
  allow('ips', 'CONNECT', '[::ffff:127.0.0.1]:443', { rule: 0 }),
  block('ips', 'GET', 'http://127.0.0.2/', 'destination'),
  block('ips', 'GET', 'http://127.0.0.1:8080/', 'port', { rule: 0 }),
  allow('ips', 'GET', 'http://192.168.1.1/', { rule: 8 }),
  allow('ips', 'GET', 'http://3232235777/', { rule: 8 }),
  allow('ips', 'CONNECT', '0xc0a80101:443', { rule: 8 }),
  allow('ips', 'GET', 'http://198.51.100.1/', { rule: 9 }),
  allow('ips', 'GET', 'http://[::ffff:c633:6401]/', { rule: 9 }),
  allow('ips', 'GET', 'https://198.51.100.2:8443/', { rule: 10 }),
  block('ips', 'GET', 'https://198.51.100.2/', 'port', { rule: 10 }),
  // IPv6 literals, brackets and zones.
  allow('ips', 'GET', 'http://[::1]:8080/', { rule: 1 }),
  allow('ips', 'GET', 'http://[0:0:0:0:0:0:0:1]:8080/', { rule: 1 }),
  block('ips', 'GET', 'http://[::1]/', 'port', { rule: 1 }),
  allow('ips', 'CONNECT', '[::1]:8080', { rule: 1 }),
  allow('ips', 'CONNECT', '[::1%eth0]:8080', { rule: 1 }),
  allow('ips', 'CONNECT', '[::1%25lo]:8080', { rule: 1 }),
  block('ips', 'CONNECT', '::1:8080', 'request'),
  block('ips', 'GET', 'http://[::1%25eth0]:8080/', 'request'),
  allow('ips', 'GET', 'http://[2001:db8::5]/', { rule: 2 }),
  allow('ips', 'GET', 'https://[2001:DB8:0:0::5]/', { rule: 2 }),
  block('ips', 'GET', 'http://[2001:db8::6]/', 'destination'),
  allow('ips', 'GET', 'http://[2001:db8:3::1]/', { rule: 7 }),
  allow('ips', 'GET', 'https://[2001:db8:3:0:0:0:0:1]/', { rule: 7 }),
  block('ips', 'GET', 'http://[2001:db8:3::1]:8080/', 'port', { rule: 7 }),
  // CIDR edges.
  allow('ips', 'GET', 'http://10.0.0.0/', { rule: 3 }),
  allow('ips', 'GET', 'http://10.255.255.255/', { rule: 3 }),
  block('ips', 'GET', 'http://9.255.255.255/', 'destination'),
  block('ips', 'GET', 'http://11.0.0.0/', 'destination'),
  allow('ips', 'GET', 'http://012.1/', { rule: 3 }),
  allow('ips', 'GET', 'http://[::ffff:10.1.2.3]/', { rule: 3 }),
  allow('ips', 'CONNECT', '10.20.30.40:443', { rule: 3, intercept: false }),
  block('ips', 'GET', 'http://ten.example/', 'destination'),
  allow('ips', 'GET', 'http://[2001:db8:1::]/', { rule: 4 }),
  allow('ips', 'GET', 'http://[2001:db8:1:ffff:ffff:ffff:ffff:ffff]/', { rule: 4 }),
  block('ips', 'GET', 'http://[2001:db8:0:ffff:ffff:ffff:ffff:ffff]/', 'destination'),
  block('ips', 'GET', 'http://[2001:db8:2::]/', 'destination'),
  allow('ips', 'GET', 'http://192.0.2.7/', { rule: 5 }),
  block('ips', 'GET', 'http://192.0.2.6/', 'destination'),
  block('ips', 'GET', 'http://192.0.2.8/', 'destination'),
  allow('ips', 'GET', 'http://[2001:db8:2::9]/', { rule: 6 }),
  block('ips', 'GET', 'http://[2001:db8:2::8]/', 'destination'),
  block('ips', 'GET', 'http://[2001:db8:2::a]/', 'destination'),
  allow('everything', 'GET', 'http://0.0.0.0/', { rule: 0 }),
  allow('everything', 'GET', 'http://255.255.255.255/', { rule: 0 }),
  allow('everything', 'GET', 'http://[::ffff:8.8.8.8]/', { rule: 0 }),
  allow('everything', 'GET', 'http://[::]/', { rule: 1 }),
  allow('everything', 'GET', 'http://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]/', { rule: 1 }),
  block('everything', 'GET', 'http://example.com/', 'destination'),
  block('everything', 'GET', 'http://[::1]:8080/', 'port', { rule: 1 }),

  // URL prefixes: scheme, port and path.
  allow('urls', 'POST', 'https://uploads.example.com/v1/files', { rule: 0 }),
  allow('urls', 'GET', 'https://uploads.example.com/v1/', { rule: 0 }),
  allow('urls', 'GET', 'https://uploads.example.com:443/v1/a/b?x=1', { rule: 0 }),
  allow('urls', 'GET', 'wss://uploads.example.com/v1/socket', { rule: 0 }),
  block('urls', 'GET', 'https://uploads.example.com/v1', 'path', { rule: 0 }),
  block('urls', 'GET', 'https://uploads.example.com/v2/x', 'path', { rule: 0 }),
  block('urls', 'GET', 'https://uploads.example.com/V1/x', 'path', { rule: 0 }),
  block('urls', 'GET', 'https://uploads.example.com/v1/../admin', 'path', { rule: 0 }),
  block('urls', 'GET', 'http://uploads.example.com/v1/x', 'port', { rule: 0 }),
  block('urls', 'GET', 'http://uploads.example.com:443/v1/x', 'path', {
    rule: 0,
    reason: 'allows only https, not http',
  }),
  block('urls', 'GET', 'https://uploads.example.com:8443/v1/', 'port', { rule: 0 }),
  allow('urls', 'CONNECT', 'uploads.example.com:443', { rule: 0, intercept: true }),
  allow('urls', 'GET', 'http://plain.example.com:8080/api', { rule: 1 }),
  allow('urls', 'GET', 'http://plain.example.com:8080/api/v2', { rule: 1 }),
  allow('urls', 'GET', 'ws://plain.example.com:8080/api/ws', { rule: 1 }),
  block('urls', 'GET', 'http://plain.example.com:8080/apix', 'path', { rule: 1 }),
  block('urls', 'GET', 'http://plain.example.com/api', 'port', { rule: 1 }),
  block('urls', 'GET', 'https://plain.example.com:8080/api', 'path', { rule: 1 }),
  // Its plain HTTP may travel in a tunnel; TLS there is opened and its https requests refused.
  allow('urls', 'CONNECT', 'plain.example.com:8080', { rule: 1, intercept: true }),
  block('urls', 'CONNECT', 'plain.example.com:80', 'port', { rule: 1 }),
  allow('plainBeside', 'CONNECT', 'both.example.com:80', { rule: 1, intercept: false }),
  allow('plainBeside', 'CONNECT', 'both.example.com:443', { rule: 1, intercept: false }),
  allow('plainBeside', 'GET', 'http://both.example.com/anything', { rule: 1 }),
  allow('plainBeside', 'GET', 'http://both.example.com/api/x', { rule: 0 }),
  allow('urls', 'GET', 'https://api.example.net/repos/acme', { rule: 2 }),
  allow('urls', 'GET', 'https://api.example.net/repos/acme/widgets', { rule: 2 }),
  block('urls', 'GET', 'https://api.example.net/repos/acme-evil', 'path', { rule: 2 }),
  block('urls', 'GET', 'https://api.example.net/repos/acme%2f..%2f..%2fadmin', 'path', { rule: 2 }),
  allow('urls', 'DELETE', 'https://gw.example.org/anything/at/all', { rule: 3 }),
  allow('urls', 'GET', 'https://gw.example.org', { rule: 3 }),
  allow('urls', 'GET', 'https://[2001:db8::7]:8443/rpc/call', { rule: 4 }),
  block('urls', 'GET', 'https://[2001:db8::7]/rpc/call', 'port', { rule: 4 }),

  // Paths: segment boundaries.
  allow('paths', 'GET', 'https://files.example.com/a', { rule: 0, intercept: false }),
  allow('paths', 'GET', 'http://files.example.com:8080/caf%c3%a9/menu', { rule: 1 }),
  allow('paths', 'GET', 'http://files.example.com:8080/café/menu', { rule: 1 }),
  block('paths', 'GET', 'http://files.example.com:8080/a/%25%32%65%25%32%65/caf%C3%A9/', 'path'),
  allow('paths', 'GET', 'https://files.example.com/a/', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a/x/y', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a?next=/b', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a/x#../../b', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/ab', 'path', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/a-evil', 'path', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/A', 'path', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/', 'path', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/b', 'path', {
    rule: 0,
    reason: 'allowed: /a, /pub/',
  }),
  allow('paths', 'GET', 'https://files.example.com/pub/', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/pub/x', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/pub', 'path', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/public', 'path', { rule: 0 }),
  block('paths', 'POST', 'https://files.example.com/a', 'method', { rule: 0 }),
  block('paths', 'POST', 'https://files.example.com/b', 'path', { rule: 0 }),
  allow('paths', 'CONNECT', 'files.example.com:443', { rule: 0, intercept: true }),
  // Paths: normalisation and bypass attempts.
  allow('paths', 'GET', 'https://files.example.com/a/./x', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a//x', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a/x/../y', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/a/%2e', { rule: 0 }),
  allow('paths', 'GET', 'https://files.example.com/b/../a/x', { rule: 0 }),
  block('paths', 'GET', 'https://files.example.com/a/..', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/../b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/%2e%2e/b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/%2E%2E/b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/.%2e/b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/..%2fb', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/%2E%2E%2Fb', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/..%5cb', 'path'),
  block('paths', 'GET', 'https://files.example.com/a\\..\\b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/x/..%2f..%2f..%2fb', 'path'),
  block('paths', 'GET', 'https://files.example.com//b', 'path'),
  block('paths', 'GET', 'https://files.example.com//a', 'path'),
  block('paths', 'GET', 'https://files.example.com/b/..%2f../a/x', 'path'),
  block('paths', 'GET', 'https://files.example.com/a%2fx', 'path'),
  block('paths', 'GET', 'https://files.example.com/pub/..%2f..%2fetc', 'path'),
  // Tomcat cuts `;…` before decoding: the encoded slash goes with it, and `..` stays.
  block('paths', 'GET', 'https://files.example.com/a/..;%2fa/b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/..;%2Fa%2Fx/b', 'path'),
  block('paths', 'GET', 'https://files.example.com/a/%252e%252e/b', 'path', {
    reason: 'double-encoded',
  }),
  block('paths', 'GET', 'https://files.example.com/a/%252E%252E%252Fb', 'path', {
    reason: 'double-encoded',
  }),
  block('paths', 'GET', 'https://files.example.com/a/..%252fb', 'path', {
    reason: 'double-encoded',
  }),
  block('paths', 'GET', 'https://files.example.com/a/..%255cb', 'path', {
    reason: 'double-encoded',
  }),
  block('paths', 'GET', 'https://files.example.com/a/%c0%ae%c0%ae/b', 'path', {
    reason: 'overlong UTF-8 escape',
  }),
  block('paths', 'GET', 'https://files.example.com/a/%u002e%u002e/b', 'path', {
    reason: 'overlong UTF-8 escape',
  }),
  allow('paths', 'GET', 'https://files.example.com/a/%c3%a9t%c3%a9', { rule: 0 }),

  // The refusal names the rule that got furthest: port < path < method.
  block('layers', 'GET', 'https://multi.example.com/other', 'path', { rule: 1 }),
  block('layers', 'POST', 'https://multi.example.com/api', 'method', { rule: 1 }),
  block('layers', 'GET', 'https://multi.example.com:9999/api', 'port', { rule: 0 }),
  allow('layers', 'POST', 'https://multi.example.com:8443/anything', { rule: 0 }),
  allow('layers', 'GET', 'https://multi.example.com/api/x', { rule: 1 }),
  allow('layers', 'CONNECT', 'multi.example.com:443', { rule: 1, intercept: true }),
  allow('layers', 'CONNECT', 'multi.example.com:8443', { rule: 0, intercept: false }),

  // CONNECT: judged on host and port; intercept only where a rule needs to see inside TLS.
  allow('tunnels', 'CONNECT', 'pinned.example.com:443', { rule: 0, intercept: false, scan: false }),
  block('tunnels', 'CONNECT', 'pinned.example.com:8443', 'port', { rule: 0 }),
  allow('tunnels', 'GET', 'https://pinned.example.com/anything', { rule: 0, scan: false }),
  allow('tunnels', 'CONNECT', 'plain.example.com:443', { rule: 1, intercept: false }),
  allow('tunnels', 'CONNECT', 'scanned.example.com:443', { rule: 2, intercept: true, scan: true }),
  allow('tunnels', 'CONNECT', 'a.paths.example.com:443', { rule: 3, intercept: true }),
  allow('tunnels', 'CONNECT', 'deep.a.paths.example.com:80', { rule: 3, intercept: true }),
  block('tunnels', 'CONNECT', 'paths.example.com:443', 'destination'),
  block('tunnels', 'GET', 'https://a.paths.example.com/y', 'path', { rule: 3 }),
  allow('tunnels', 'CONNECT', 'methods.example.com:443', { rule: 4, intercept: true }),
  allow('tunnels', 'CONNECT', 'prefix.example.com:443', { rule: 5, intercept: true }),
  block('tunnels', 'CONNECT', 'prefix.example.com:80', 'port', { rule: 5 }),
  allow('tunnels', 'CONNECT', 'split.example.com:8443', { rule: 6, intercept: true, scan: true }),
  allow('tunnels', 'CONNECT', 'split.example.com:443', { rule: 7, intercept: false, scan: false }),
  block('tunnels', 'CONNECT', 'unknown.example.com:443', 'destination', {
    rule: null,
    intercept: false,
  }),

  // mode: audit turns blocks into warnings, but never forwards a malformed request.
  allow('audit', 'GET', 'https://api.github.com/repos/acme', { rule: 0 }),
  warn('audit', 'POST', 'https://api.github.com/repos/acme', 'method', { rule: 0 }),
  warn('audit', 'GET', 'https://api.github.com/admin', 'path', { rule: 0 }),
  warn('audit', 'GET', 'https://api.github.com:8443/repos', 'port', { rule: 0 }),
  warn('audit', 'GET', 'https://api.github.com/repos/%252e%252e/admin', 'path', { rule: 0 }),
  warn('audit', 'GET', 'https://evil.example/', 'destination', { rule: null, scan: true }),
  warn('audit', 'CONNECT', 'evil.example:443', 'destination', { rule: null, intercept: true }),
  warn('audit', 'CONNECT', 'api.github.com:8443', 'port', { rule: 0, intercept: true }),
  block('audit', 'GET', 'not-a-url', 'request'),
  block('audit', 'CONNECT', 'https://api.github.com/', 'request'),
  block('audit', 'GET', 'gopher://api.github.com/', 'request'),

  // default_deny: false lets unnamed hosts through (scanned); named hosts keep their rules.
  allow('open', 'GET', 'https://other.example/', {
    rule: null,
    scan: true,
    intercept: false,
    reason: 'default_deny is false',
  }),
  allow('open', 'POST', 'http://10.1.2.3:9000/x', { rule: null, scan: true }),
  allow('open', 'CONNECT', 'other.example:443', { rule: null, intercept: false }),
  allow('open', 'GET', 'https://api.github.com/', { rule: 0, scan: false }),
  block('open', 'POST', 'https://api.github.com/', 'method', { rule: 0 }),
  block('open', 'GET', 'https://api.github.com:8443/', 'port', { rule: 0 }),
  block('open', 'GET', 'ftp://other.example/', 'request'),
];

for (const row of ROWS) {
  const expected = row.layer === undefined ? row.verdict : `${row.verdict} (${row.layer})`;
  test(`[${row.policy}] ${row.method} ${row.target} → ${expected}`, () => {
    const decision = decide(POLICIES[row.policy], { method: row.method, target: row.target });
    const context = `${decision.verdict} ${decision.layer ?? ''}: ${decision.reason}`;
    assert.equal(decision.verdict, row.verdict, context);
    assert.equal(decision.layer, row.layer, context);
    assert.ok(decision.reason.length > 0);
    if (row.rule !== undefined) assert.equal(decision.rule?.index ?? null, row.rule, context);
    if (row.intercept !== undefined) assert.equal(decision.intercept, row.intercept, context);
    if (row.scan !== undefined) assert.equal(decision.scan, row.scan, context);
    if (row.reason !== undefined)
      assert.ok(
        decision.reason.includes(row.reason),
        `reason ${JSON.stringify(decision.reason)} lacks ${JSON.stringify(row.reason)}`,
      );
    if (row.verdict === 'block') assert.equal(decision.intercept, false);
    // What passes only in audit mode is scanned, inside its tunnel too.
    if (row.verdict === 'warn')
      assert.equal(decision.intercept, decision.target?.kind === 'authority');
    if (row.verdict !== 'allow') assert.equal(decision.scan, true);
    if (row.layer === 'request') assert.equal(decision.rule, undefined);
    else assert.notEqual(decision.target, undefined);
  });
}

test('the table is large enough to mean something', () => {
  assert.ok(ROWS.length >= 100, `${ROWS.length} rows`);
  const names = new Set(ROWS.map((row) => `${row.policy} ${row.method} ${row.target}`));
  assert.equal(names.size, ROWS.length, 'every row is a different request');
});

test('the decision carries the canonical target', () => {
  const decision = decide(POLICIES.ips, { method: 'GET', target: 'http://0x7f.1:80/x' });
  assert.deepEqual(decision.target, {
    kind: 'url',
    scheme: 'http',
    host: { kind: 'ip', ip: { family: 4, value: 0x7f000001 } },
    port: 80,
    pathname: '/x',
    search: '',
    hostname: '127.0.0.1',
    authority: '127.0.0.1',
  });
  const tunnel = decide(POLICIES.ips, { method: 'CONNECT', target: '[fe80::1%eth0]:443' });
  assert.deepEqual(tunnel.target, {
    kind: 'authority',
    host: { kind: 'ip', ip: { family: 6, value: (0xfe80n << 112n) | 1n } },
    port: 443,
  });
  assert.equal(tunnel.layer, 'destination');
  assert.ok(tunnel.reason.includes('[fe80::1]'), tunnel.reason);
});

test('decide is pure: the same request gives the same decision and the policy is untouched', () => {
  const before = JSON.stringify(POLICIES.paths);
  const a = decide(POLICIES.paths, {
    method: 'GET',
    target: 'https://files.example.com/a/%2e%2e/b',
  });
  const b = decide(POLICIES.paths, {
    method: 'GET',
    target: 'https://files.example.com/a/%2e%2e/b',
  });
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(POLICIES.paths), before);
});

test('a bound secret goes where its allow entry says: host, port (80 and 443 when none), scheme and path', () => {
  const policy = load(
    `version: "1.0"
egress:
  - destination: "*.acme.test"
secrets:
  - env: REPO_TOKEN
    allow: ["https://api.acme.test/repos/acme/", "http://api.acme.test:8080/repos/acme/"]
  - env: HOST_TOKEN
    allow: ["uploads.acme.test", "*.cdn.acme.test", "10.1.0.0/16"]
`,
    'secrets.yaml',
  );
  const kept = (target: string) => {
    const parsed = parseRequestTarget(target);
    if (!parsed.ok) throw new Error(parsed.problem);
    return secretsKeptFrom(policy, parsed.target).join(' ');
  };
  const rows: [string, string][] = [
    ['https://api.acme.test/repos/acme/widgets?ref=main', 'HOST_TOKEN'],
    ['https://api.acme.test/repos/acme', 'REPO_TOKEN HOST_TOKEN'],
    ['https://api.acme.test/repos/other/x', 'REPO_TOKEN HOST_TOKEN'],
    ['https://api.acme.test/gists', 'REPO_TOKEN HOST_TOKEN'],
    ['https://api.acme.test/repos/acme/../../exfil/x', 'REPO_TOKEN HOST_TOKEN'],
    ['https://api.acme.test/repos/acme/..;/evil', 'REPO_TOKEN HOST_TOKEN'],
    ['https://api.acme.test/repos/acme/%2e%2e/x', 'REPO_TOKEN HOST_TOKEN'],
    ['http://api.acme.test/repos/acme/x', 'REPO_TOKEN HOST_TOKEN'],
    ['http://api.acme.test:8080/repos/acme/x', 'HOST_TOKEN'],
    ['wss://api.acme.test/repos/acme/stream', 'HOST_TOKEN'],
    ['https://api.acme.test:8443/repos/acme/x', 'REPO_TOKEN HOST_TOKEN'],
    // A tunnel carries any path: inside it, each request is judged.
    ['api.acme.test:443', 'REPO_TOKEN HOST_TOKEN'],
    ['uploads.acme.test:443', 'REPO_TOKEN'],
    ['https://uploads.acme.test/anything', 'REPO_TOKEN'],
    ['http://uploads.acme.test/anything', 'REPO_TOKEN'],
    ['http://uploads.acme.test:8080/anything', 'REPO_TOKEN HOST_TOKEN'],
    ['uploads.acme.test:19109', 'REPO_TOKEN HOST_TOKEN'],
    ['https://a.b.cdn.acme.test/x', 'REPO_TOKEN'],
    ['https://cdn.acme.test/x', 'REPO_TOKEN HOST_TOKEN'],
    ['https://10.1.2.3/x', 'REPO_TOKEN'],
    ['https://10.1.2.3:9000/x', 'REPO_TOKEN HOST_TOKEN'],
  ];
  for (const [target, expected] of rows) assert.equal(kept(target), expected, target);
});

test('a tls: passthrough rule keeps its host out of interception whatever the order of the rules', () => {
  const passthrough = '  - destination: "pinned.acme.test"\n    tls: passthrough\n';
  const wildcard = '  - destination: "*.acme.test"\n';
  for (const rules of [passthrough + wildcard, wildcard + passthrough]) {
    const policy = load(
      `version: "1.0"\negress:\n${rules}secrets:\n  - env: T\n    allow: []\n`,
      'order.yaml',
    );
    const pinned = decide(policy, { method: 'CONNECT', target: 'pinned.acme.test:443' });
    assert.equal(pinned.verdict, 'allow');
    assert.equal(pinned.passthrough, true, rules);
    assert.equal(
      decide(policy, { method: 'CONNECT', target: 'api.acme.test:443' }).passthrough,
      false,
    );
  }
});
