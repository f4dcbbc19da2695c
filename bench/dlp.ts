// dlp.scan_us_per_request: what secret scanning costs one request on one core: its URL, ten
// headers and a 4 KiB JSON body, with the built-in detectors and two bound secrets.
import { pathToFileURL } from 'node:url';
import { BUILTIN_DETECTORS } from '../src/engine/dlp/detectors.js';
import { bodyViews, headerViews } from '../src/engine/dlp/content-views.js';
import { createSecretScanner } from '../src/engine/dlp/secret-scan.js';
import { parseDestination } from '../src/policy/destination.js';
import { parseRequestTarget } from '../src/policy/target.js';

const ROUNDS = 5_000;

export function benchDlp(rounds = ROUNDS): number {
  const allow = parseDestination('api.github.com');
  if (!allow.ok) throw new Error('bench destination invalid');
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [
    {
      env: 'AGENT_TOKEN',
      value: `ghp_${'Ab4Cd8Ef2G'.repeat(3)}h6Ij0K`,
      allow: [allow.destination],
    },
    { env: 'DEPLOY_KEY', value: 'p@ss/w0rd+with=sp3cial!chars', allow: [allow.destination] },
  ]);
  const url = 'https://uploads.example.com/v1/items?page=2&sort=created&filter=open';
  const parsed = parseRequestTarget(url);
  if (!parsed.ok) throw new Error(parsed.problem);
  const to = parsed.target;
  const headers = headerViews(
    Array.from({ length: 10 }, (_, i) => [`X-Header-${i}`, `value-${i}-${'v'.repeat(40)}`]).flat(),
  );
  const body = Buffer.from(
    JSON.stringify({
      items: Array.from({ length: 40 }, (_, i) => ({
        id: i,
        title: `item ${i} ${'t'.repeat(60)}`,
      })),
    }),
  );
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    const views = bodyViews(body, undefined, 8 * 1024 * 1024);
    if (!views.ok) throw new Error(views.reason);
    if (
      scanner.scanUrl(url, to) ??
      scanner.scanContent(headers, to, true) ??
      scanner.scanContent(views.views, to, true)
    )
      throw new Error('the bench request must be clean');
  }
  return ((performance.now() - started) * 1000) / rounds;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`dlp.scan_us_per_request ${benchDlp().toFixed(1)}`);
}
