/**
 * The ports local services listen on, from /proc/net/{tcp,tcp6,udp,udp6} — the files `ss` and
 * `netstat` read, per network namespace. In "all-unused" mode these are the ports that are NOT
 * decoys. Sockets of this process (the agent's own decoy listeners and its health port) stay
 * decoys: nothing real answers there.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ListeningPorts {
  readonly tcp: number[];
  readonly udp: number[];
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

/**
 * Parses one /proc/net/{tcp,udp}[6] table: the local ports of listening TCP sockets or of bound,
 * unconnected UDP sockets, skipping the sockets whose inode is in `skipInodes`.
 */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', skipInodes: ReadonlySet<string> = new Set()): number[] {
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [, local, remote, state] = fields;
    const inode = fields[9] ?? '';
    if (!local || !remote || !state) continue;
    if (protocol === 'tcp' ? state !== TCP_LISTEN : state !== UDP_UNCONNECTED || !remote.endsWith(':0000')) continue;
    if (skipInodes.has(inode)) continue;
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** The socket inodes this process holds (from /proc/self/fd). */
export async function ownSocketInodes(): Promise<Set<string>> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = await readdir('/proc/self/fd');
  } catch {
    return inodes;
  }
  await Promise.all(
    fds.map(async (fd) => {
      try {
        const link = await readlink(`/proc/self/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(link);
        if (match?.[1]) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }),
  );
  return inodes;
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Ports with a listening socket of another process, TCP and UDP, IPv4 and IPv6. */
export async function listeningPorts(options: { includeOwn?: boolean } = {}): Promise<ListeningPorts> {
  const skip = options.includeOwn ? new Set<string>() : await ownSocketInodes();
  const [tcp4, tcp6, udp4, udp6] = await Promise.all(['tcp', 'tcp6', 'udp', 'udp6'].map((name) => readOptional(`/proc/net/${name}`)));
  const merge = (a: number[], b: number[]): number[] => [...new Set([...a, ...b])].sort((x, y) => x - y);
  return {
    tcp: merge(parseProcNet(tcp4 ?? '', 'tcp', skip), parseProcNet(tcp6 ?? '', 'tcp', skip)),
    udp: merge(parseProcNet(udp4 ?? '', 'udp', skip), parseProcNet(udp6 ?? '', 'udp', skip)),
  };
}
