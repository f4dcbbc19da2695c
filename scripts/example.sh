#!/usr/bin/env bash
# The bundled example, end to end (root): a stand-in API on the host's loopback, the example
# agent run inside the boundary under the example policy, and its evidence verified offline.
set -euo pipefail
cd "$(dirname "$0")/.."
out=example-output
rm -rf "$out"

# The stand-in API: 127.0.0.1:18080, serving /public/notes.txt (and a /private/ it must not give out).
node -e '
  require("node:http").createServer((req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(req.url.startsWith("/public/") ? "notes for the agent\n" : "private data\n");
  }).listen(18080, "127.0.0.1", () => console.error("example: origin on http://127.0.0.1:18080"));
' &
origin=$!
trap 'kill $origin 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done

# The signing key pair; a reviewer pins the public key ahead of time.
node dist/cli.js keygen --out "$out/keys" >/dev/null

status=0
node dist/cli.js run --policy fixtures/policies/example.yaml --evidence-output "$out/packet" \
  --signing-key "$out/keys/signing-key.pem" --public-key "$out/keys/public-key.pem" \
  -- fixtures/agents/example.sh || status=$?

echo
echo "example: the packet, verified again as a reviewer would (exit $status from run):"
node dist/cli.js verify --packet "$out/packet" --public-key "$out/keys/public-key.pem"
exit "$status"
