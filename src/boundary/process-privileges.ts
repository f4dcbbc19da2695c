// What /proc/PID/status says of a process's privileges, against what setpriv was asked for
// (withoutPrivileges): the engine is checked once it is ready, so that a privilege drop that
// silently stopped working stops the run instead of leaving the engine root.

const CAPABILITY_SETS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];

/** Each way the process holds more than `uid`/`gid` with no groups, capabilities or way back. */
export function privilegeProblems(status: string, uid: number, gid: number): string[] {
  const fields = new Map<string, string>();
  for (const line of status.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const field = (name: string) => fields.get(name) ?? '(missing)';
  const problems: string[] = [];
  const ids = (name: string, id: number) => {
    if (field(name).split(/\s+/).join(' ') !== `${id} ${id} ${id} ${id}`)
      problems.push(`${name} is ${field(name)}; expected ${id} for all four`);
  };
  ids('Uid', uid);
  ids('Gid', gid);
  if (field('Groups') !== '') problems.push(`Groups is ${field('Groups')}; expected none`);
  for (const set of CAPABILITY_SETS)
    if (!/^0+$/.test(field(set))) problems.push(`${set} is ${field(set)}; expected none`);
  if (field('NoNewPrivs') !== '1') problems.push(`NoNewPrivs is ${field('NoNewPrivs')}`);
  return problems;
}
