// A stand-in for the Actions results service on loopback, speaking what @actions/artifact
// sends: Twirp JSON (CreateArtifact, FinalizeArtifact) and an Azure block-blob upload to the
// signed URL it hands out (Put Block, Put Block List). It keeps what was uploaded.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const TWIRP = '/twirp/github.actions.results.api.v1.ArtifactService/';

export interface UploadedArtifact {
  readonly name: string;
  readonly backendIds: readonly [string, string];
  blob: Buffer | undefined;
  finalized: { size: string; hash: string } | undefined;
}

export interface ArtifactService {
  readonly url: string;
  readonly artifacts: UploadedArtifact[];
  readonly artifactId: string;
  close(): Promise<void>;
}

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startArtifactService(): Promise<ArtifactService> {
  const artifacts: UploadedArtifact[] = [];
  const blocks = new Map<string, Buffer>();
  let url = '';
  const server: Server = createServer((req, res) => {
    void (async () => {
      const data = await body(req);
      const target = new URL(req.url ?? '/', url);
      const json = (status: number, value: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'POST' && target.pathname === `${TWIRP}CreateArtifact`) {
        const request = JSON.parse(data.toString()) as Record<string, string>;
        artifacts.push({
          name: request['name'] ?? '',
          backendIds: [
            request['workflow_run_backend_id'] ?? '',
            request['workflow_job_run_backend_id'] ?? '',
          ],
          blob: undefined,
          finalized: undefined,
        });
        return json(200, {
          ok: true,
          signed_upload_url: `${url}/blob/${encodeURIComponent(request['name'] ?? '')}?sig=test`,
        });
      }
      if (req.method === 'POST' && target.pathname === `${TWIRP}FinalizeArtifact`) {
        const request = JSON.parse(data.toString()) as Record<string, string>;
        const artifact = artifacts.find((a) => a.name === request['name']);
        if (artifact?.blob === undefined)
          return json(404, { code: 'not_found', msg: 'no blob uploaded' });
        artifact.finalized = { size: request['size'] ?? '', hash: request['hash'] ?? '' };
        return json(200, { ok: true, artifact_id: ARTIFACT_ID });
      }
      if (req.method === 'PUT' && target.pathname.startsWith('/blob/')) {
        const name = decodeURIComponent(target.pathname.slice('/blob/'.length));
        const artifact = artifacts.find((a) => a.name === name);
        const headers = {
          'x-ms-request-id': 'test',
          'x-ms-version': '2023-11-03',
          etag: '"0x1"',
          'last-modified': new Date().toUTCString(),
        };
        if (artifact === undefined || target.searchParams.get('sig') !== 'test') {
          res.writeHead(403, headers);
          return res.end();
        }
        const comp = target.searchParams.get('comp');
        if (comp === 'block')
          blocks.set(`${name}/${target.searchParams.get('blockid') ?? ''}`, data);
        else if (comp === 'blocklist') {
          const ids = [
            ...data.toString().matchAll(/<(?:Latest|Committed|Uncommitted)>([^<]*)<\//g),
          ].map((m) => m[1] ?? '');
          artifact.blob = Buffer.concat(
            ids.map((id) => blocks.get(`${name}/${id}`) ?? Buffer.alloc(0)),
          );
        } else artifact.blob = data;
        res.writeHead(201, headers);
        return res.end();
      }
      json(404, { code: 'bad_route', msg: `${req.method ?? ''} ${target.pathname}` });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    artifacts,
    artifactId: ARTIFACT_ID,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ARTIFACT_ID = '4242';

/** An ACTIONS_RUNTIME_TOKEN as the runner issues it: a JWT whose scp names the backend ids. */
export function runtimeToken(runId: string, jobId: string): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ scp: `Actions.GenericRead Actions.Results:${runId}:${jobId}` })}.sig`;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
