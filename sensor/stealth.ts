/**
 * What the agent asks of the kernel detector (`stealth: true`): which ports to watch, whom to
 * exempt, and whether the kernel may block a source on its first decoy packet.
 */
import { ttlSecondsFor } from '../core/policy';
import { ALL_UNUSED, type AgentConfig } from './config';
import { killGuardFrom, type KernelDetectorOptions } from './kernel/detector';
import type { ListenerReport } from './listeners';

export function kernelDetectorOptions(config: AgentConfig, listeners: ListenerReport, own: readonly string[], nftables: boolean): KernelDetectorOptions {
  const policy = config.enforce.nftables.policy;
  // Kernel-speed blocking on the first decoy packet rests on an unverified source (a SYN can be
  // forged), so it follows the policy's spoof guard: only with blockUnverified.
  const kill = nftables && policy.blockUnverified ? ttlSecondsFor(1, policy) : undefined;
  return {
    // ports a service holds were skipped by the listeners: the kernel must not watch them either
    tcpPorts: config.tcpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.tcp,
    udpPorts: config.udpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.udp,
    exempt: [...config.ignore, ...own, ...config.guard.allowlist, ...config.guard.protectedCidrs],
    ...(kill !== undefined ? { killTtlSeconds: kill } : {}),
    // what the in-kernel block must never add: the never-block guard, this host included
    killGuard: killGuardFrom({ ...config.guard, protectedCidrs: [...config.guard.protectedCidrs, ...own] }),
    excludePorts: {
      tcp: config.excludePorts.tcp === ALL_UNUSED ? [] : config.excludePorts.tcp,
      udp: config.excludePorts.udp === ALL_UNUSED ? [] : config.excludePorts.udp,
    },
  };
}
