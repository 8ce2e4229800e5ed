/**
 * The host's own addresses: the exact addresses on its interfaces (os.networkInterfaces), not
 * their subnets — so a neighbour (or a demo attacker at 127.66.0.7 on loopback) is still seen.
 */
import { networkInterfaces } from 'node:os';
import { tryCanonicalAddress } from '../../core/address';

export function ownAddresses(interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string[] {
  const own = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const entry of list ?? []) {
      const canonical = tryCanonicalAddress(entry.address.split('%')[0] ?? '');
      if (canonical) own.add(canonical);
    }
  }
  return [...own].sort();
}
