// Write access for the agent where the caller opted in, as POSIX ACLs for the run only. Every
// walk is physical (-P): a symlink the agent planted never leads a root-run setfacl elsewhere.
import { stat } from 'node:fs/promises';
import { mustRun } from './command.js';

export interface AccessGrant {
  readonly path: string;
  readonly uid: number;
  readonly ownerUid: number;
  readonly ownerGid: number;
  /** Whether anything under the path had extended ACLs before the grant. */
  readonly hadAcls: boolean;
}

export async function grantWriteAccess(path: string, uid: number): Promise<AccessGrant> {
  const owner = await stat(path);
  const existing = await mustRun(`reading the ACLs of ${path}`, [
    'getfacl',
    '-R',
    '-P',
    '--skip-base',
    '--absolute-names',
    path,
  ]);
  const grant = {
    path,
    uid,
    ownerUid: owner.uid,
    ownerGid: owner.gid,
    hadAcls: existing.trim() !== '',
  };
  await mustRun(`granting the agent write access to ${path}`, [
    'setfacl',
    '-R',
    '-P',
    '-m',
    `u:${uid}:rwX,d:u:${uid}:rwX`,
    path,
  ]);
  return grant;
}

export async function revokeWriteAccess(grant: AccessGrant): Promise<void> {
  // Without earlier ACLs, removing them all restores exactly the permissions there were.
  const removal = grant.hadAcls ? ['-x', `u:${grant.uid},d:u:${grant.uid}`] : ['-b'];
  await mustRun(`revoking the agent's access to ${grant.path}`, [
    'setfacl',
    '-R',
    '-P',
    ...removal,
    grant.path,
  ]);
  // What the agent created, handed to the owner, must not stay open to others: no write for
  // group and others, no set-id bits. Not symlinks (chmod follows them); the agent is gone, so
  // nothing changes under the walk.
  await mustRun(`closing the agent's files under ${grant.path} to others`, [
    'find',
    '-P',
    grant.path,
    '-user',
    String(grant.uid),
    '!',
    '-type',
    'l',
    '-exec',
    'chmod',
    'go-w,ug-s',
    '--',
    '{}',
    '+',
  ]);
  // What the agent created belongs to the path's owner, not to a user that may be gone.
  await mustRun(`returning the agent's files under ${grant.path}`, [
    'chown',
    '-R',
    '-P',
    `--from=${grant.uid}`,
    `${grant.ownerUid}:${grant.ownerGid}`,
    grant.path,
  ]);
}
