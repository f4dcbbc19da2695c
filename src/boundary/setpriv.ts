// The one way the boundary takes an identity: setpriv to a user with no groups, no capability
// in any set, and no_new_privs, so nothing run afterwards can gain privileges back.

/** setpriv's options before `--` and the command. */
export function withoutPrivileges(uid: number, gid: number): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--ambient-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
  ];
}
