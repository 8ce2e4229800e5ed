/**
 * With stealth on, one connect is seen up to three times: the kernel's SYN, the kernel's
 * completed handshake and the socket's accept (one datagram: twice, as udp). Every later view
 * adds its kind to the event but is not another hit for the trigger.
 */
import { tryCanonicalAddress } from '../../core/address';
import type { Hit } from '../listeners';

/** a kernel SYN and a socket accept of the same (source, port) this close together are one connect */
const ECHO_WINDOW_MS = 3000;
const MAX_EXCHANGES = 20_000;

export class EchoFilter {
  /** the views (socket or kernel, by kind) of each recent (protocol, source, port), bounded */
  private readonly exchanges = new Map<string, { views: Set<string>; at: number }>();

  /** True when `hit` is a later view of an exchange already counted. */
  isEcho(side: 'socket' | 'kernel', hit: Hit): boolean {
    const pairs = hit.protocol === 'udp' ? hit.kind === 'udp' : hit.kind === 'connect' || (side === 'kernel' && hit.kind === 'syn');
    if (!pairs) return false;
    const view = `${side}:${hit.kind}`;
    const key = `${hit.protocol}|${tryCanonicalAddress(hit.source) ?? hit.source}|${hit.port}`;
    const seen = this.exchanges.get(key);
    if (seen !== undefined && !seen.views.has(view) && Math.abs(hit.at - seen.at) <= ECHO_WINDOW_MS) {
      seen.views.add(view);
      return true;
    }
    this.exchanges.delete(key);
    this.exchanges.set(key, { views: new Set([view]), at: hit.at });
    if (this.exchanges.size > MAX_EXCHANGES) this.exchanges.delete(this.exchanges.keys().next().value!);
    return false;
  }

  /** `hit`, marked `echo` when it is a later view of one exchange. */
  mark(side: 'socket' | 'kernel', hit: Hit): Hit {
    return this.isEcho(side, hit) ? { ...hit, echo: true } : hit;
  }
}
