/**
 * What a probe packet is, from its TCP flags (nmap's scan types, `man nmap`, "Port Scanning
 * Techniques"). Only the first packet of a probe reaches the detector, so the kinds are those a
 * single packet can show:
 *   SYN → syn (-sS; also the first packet of -sT, whose handshake the kernel never lets finish
 *   when it blocks), none → null (-sN), FIN → fin (-sF), FIN|PSH|URG → xmas (-sX),
 *   FIN|ACK → maimon (-sM), ACK → ack (-sA and -sW).
 * -sA and -sW send the same packet (a bare ACK, window 1024 by default); nmap tells them apart
 * only by reading the RST that comes back, so on the wire a Window scan is an ACK scan: reported
 * as `ack`. ECE/CWR (ECN) do not change the kind; RST is never a probe (the detector skips it).
 */
import type { ProbeKind } from '../../core/event';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
const ECN = 0xc0;

export function tcpKind(flags: number): ProbeKind {
  switch (flags & ~ECN & 0xff) {
    case TCP_SYN:
      return 'syn';
    case 0:
      return 'null';
    case TCP_FIN:
      return 'fin';
    case TCP_FIN | TCP_PSH | TCP_URG:
      return 'xmas';
    case TCP_FIN | TCP_ACK:
      return 'maimon';
    case TCP_ACK:
      return 'ack';
    default:
      return 'other';
  }
}
