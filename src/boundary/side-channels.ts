// Paths that lead out of the boundary without touching the network: container engine sockets
// (a root shell on the host), name-service daemons and the system bus (lookups and requests
// made by a privileged process on the agent's behalf). Those under /run are not in the agent's
// private /run; the others are masked when they exist (a directory's mask hides every socket
// in it). The probes check all of them.
export const SIDE_CHANNEL_PATHS: readonly string[] = [
  // Docker, containerd, podman, CRI-O, cri-dockerd, BuildKit
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/docker',
  '/run/containerd',
  '/run/podman',
  '/run/crio',
  '/run/cri-dockerd.sock',
  '/run/buildkit',
  // Per-user runtime dirs: rootless docker/podman sockets, user D-Bus
  '/run/user',
  // nscd and systemd-resolved answer lookups from the host's network
  '/run/nscd',
  '/var/run/nscd',
  '/run/systemd/resolve',
  // The D-Bus system bus (resolved, NetworkManager, systemd)
  '/run/dbus',
  '/var/run/dbus',
  // systemd's private and notification sockets
  '/run/systemd/private',
  '/run/systemd/notify',
];
