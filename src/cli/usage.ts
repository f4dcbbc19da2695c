export const USAGE = `Usage: pipelock-egress <command> [options]

Commands:
  policy check FILE                       validate a policy; print a summary of its rules
  policy explain FILE METHOD TARGET       would this request pass? TARGET is a URL, or
                                          host:port with METHOD CONNECT
  run --policy FILE [options] -- SCRIPT [ARGS...]
                                          run an agent script inside the boundary (root);
                                          exit code: the agent's, or 1 if the boundary or
                                          the evidence failed
    --evidence-output DIR                 where the evidence goes (default audit-artifacts)
    --signing-key KEY, --public-key KEY   sign with this key; pin it (verdict valid)
    --identity NAME                       the agent's name in every receipt
    --workdir DIR                         the agent's working directory (default .)
    --writable PATH                       let the agent write there (repeatable)
    --resolve HOST:IP                     pin a name for the engine (repeatable)
    --upstream-ca FILE                    extra CA for upstream TLS
    --max-processes N                     process limit for the agent (default 1024)
    --run-id ID                           name the run (pe- and 10 hex digits)
    --agent-env-file FILE                 the agent's environment as a JSON object of
                                          strings (read, then deleted)
    --outcome-file FILE                   write how the run ended there (JSON: exit_code,
                                          boundary_failure), for the action
  cleanup RUN_ID                          finish a run killed before its teardown (root)
  proxy --policy FILE --listen 127.0.0.1:PORT --evidence-dir DIR
                                          run the enforcing proxy alone, for development
                                          (--listen-inherited: serve a socket passed over
                                          Node IPC, as run does)
    --signing-key KEY                     sign with this key (default: a key made for
                                          this start, printed in the ready line)
    --identity NAME                       the agent's name in every receipt
    --resolve HOST:IP                     pin a name (repeatable)
    --upstream-ca FILE                    extra CA for upstream TLS
    --ca-cert FILE                        where the run CA certificate goes (default
                                          DIR/run-ca.pem; its key stays in memory)
    --run-capsule-sha256 HEX              bind this run capsule hash into the session open
                                          (run passes it; verify --packet checks it)
  verify --receipt-chain PATH [options]   verify a receipt chain offline; PATH is a receipts.json,
                                          an evidence .jsonl, a directory of evidence-*.jsonl,
                                          or one receipt
    --public-key FILE|HEX                 pinned signer key: PEM, Pipelock text or 64 hex,
                                          inline or in a file (repeatable)
    --allow-unpinned                      accept a chain no pinned key vouches for
    --policy-hash FILE                    every receipt must carry this policy hash
    --require-sealed                      a chain without a signed session close is broken
    --whole-recorder                      also check recorder entries, checkpoints, transcript root
    --rotation-endorsement FILE           authorise a key rotation (repeatable)
    --session-id ID                       recorder session (default proxy)
    --output FILE                         write verification-report.json there
  verify --packet DIR [options]           verify an Audit Packet as the action does: the chain
                                          in evidence.jsonl (sealed, whole recorder, the
                                          packet's policy hash), then every other file
                                          against it; exit 0 only if all of it holds
    --public-key FILE|HEX, --allow-unpinned, --output FILE   as above (the report lists
                                          each file's check)
    --policy-hash FILE                    every receipt must carry this policy hash
                                          (default: the packet's policy-hash.txt)
  keygen --out DIR                        create signing-key.pem, public-key.pem and
                                          public-key.pipelock in DIR (never overwrites);
                                          print the hex public key
  view DIR [options]                      verify an Audit Packet as the action does and serve
                                          it to a browser on loopback until Ctrl-C; prints
                                          the address (it holds an access token)
    --public-key FILE|HEX                 pinned signer key (repeatable); without one the
                                          verdict is self-consistent only
    --listen 127.0.0.1:PORT               where to serve (default: a free port)
    --policy-hash FILE                    every receipt must carry this policy hash
                                          (default: the packet's policy-hash.txt)

Options:
  -h, --help                              show this help
  -v, --version                           print the version

Exit codes: 0 success or allow; 1 invalid, failed or block; 2 usage or unreadable input.
`;
