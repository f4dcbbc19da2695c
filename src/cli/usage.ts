export const USAGE = `Usage: pipelock-egress <command> [options]

Commands:
  policy check FILE                       validate a policy; print a summary of its rules
  policy explain FILE METHOD TARGET       would this request pass? TARGET is a URL, or
                                          host:port with METHOD CONNECT
  run --policy FILE [options] -- SCRIPT [ARGS...]
                                          run an agent script inside the boundary (root)
  proxy --policy FILE --listen 127.0.0.1:PORT --evidence-dir DIR
                                          run the enforcing proxy alone, for development
  verify --receipt-chain PATH [options]   verify a receipt chain offline
  keygen --out DIR                        create an Ed25519 signing key pair
  view DIR                                serve the packet viewer for an Audit Packet

Options:
  -h, --help                              show this help
  -v, --version                           print the version

Exit codes: 0 success or allow; 1 invalid, failed or block; 2 usage or unreadable input.
`;
