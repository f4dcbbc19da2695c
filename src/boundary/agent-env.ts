// The agent's environment, built deliberately: the caller's variables minus the runner's
// internals, then the proxy, CA and identity variables that route every client through the
// engine. Pure.

export interface AgentEnvPlan {
  readonly proxyUrl: string;
  readonly home: string;
  readonly user: string;
  /** CA bundle the agent's clients must trust: system roots plus the run CA. */
  readonly caBundle: string;
}

const RUNNER_INTERNALS = [
  /^ACTIONS_/,
  /^INPUT_/,
  /^GITHUB_(ENV|OUTPUT|PATH|STATE|STEP_SUMMARY)$/,
  /^RUNNER_TRACKING_ID$/,
  /^SUDO_/,
  /^PIPELOCK_/,
];

const PROXY_NAMES = ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'];

/** Every client family's "trust this bundle" variable, so none falls back to its own roots. */
const CA_FILE_VARIABLES = [
  'SSL_CERT_FILE', // OpenSSL, Python ssl, Go, Ruby
  'CURL_CA_BUNDLE', // curl
  'NODE_EXTRA_CA_CERTS', // Node
  'REQUESTS_CA_BUNDLE', // Python requests
  'GIT_SSL_CAINFO', // git
  'NPM_CONFIG_CAFILE', // npm
  'PIP_CERT', // pip
  'AWS_CA_BUNDLE', // AWS CLI and SDKs
  'YARN_CA_FILE_PATH', // yarn
  'GRPC_DEFAULT_SSL_ROOTS_FILE_PATH', // gRPC
];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function agentEnvironment(
  caller: NodeJS.ProcessEnv,
  plan: AgentEnvPlan,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(caller)) {
    if (value === undefined) continue;
    if (RUNNER_INTERNALS.some((pattern) => pattern.test(name))) continue;
    if (PROXY_NAMES.includes(name.toUpperCase())) continue;
    env[name] = value;
  }
  env['PATH'] = caller['PATH'] || DEFAULT_PATH;
  env['HOME'] = plan.home;
  env['USER'] = plan.user;
  env['LOGNAME'] = plan.user;
  env['LANG'] = caller['LANG'] || 'C.UTF-8';
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) {
    env[name] = plan.proxyUrl;
    env[name.toLowerCase()] = plan.proxyUrl;
  }
  env['NO_PROXY'] = env['no_proxy'] = 'localhost,127.0.0.1,::1';
  // Node's own fetch (and, from 24.5, http.request) reads the variables above only when told
  // to: without this, it would try the network directly, where the agent has none.
  env['NODE_USE_ENV_PROXY'] = '1';
  for (const name of CA_FILE_VARIABLES) env[name] = plan.caBundle;
  env['PIPELOCK_PROXY_URL'] = plan.proxyUrl;
  // WebSocket clients connect to the proxy itself and append the (encoded) target URL.
  env['PIPELOCK_WS_URL'] = `${plan.proxyUrl.replace(/^http:/, 'ws:')}/ws?url=`;
  return env;
}
