/**
 * What the agent asks of the kernel detector (`stealth: true`): which ports to watch, whom to
 * exempt, and what the kernel may do on its own (docs/kernel.md):
 * - with `enforce.nftables` on, quarantine a source for seconds on its first forgeable decoy
 *   packet (a SYN scanner is blinded; a forged address costs its owner at most those seconds),
 *   within the policy's burst budget a minute, and redirect unused ports to the agent's socket
 *   (all-unused: for every source; a decoy list: for sources seen probing it), so a rescan sees
 *   them all open. Proof — and so a block — comes only from a socket's accept, never the kernel.
 * - with `blockUnverified` on too, block on the first decoy packet (the operator opted in).
 * - in monitor mode (no enforcement) nothing: the kernel only reports, traffic is never touched;
 *   and so in simulation of every block or of the sensor's (`enforce.nftables.simulate`:
 *   sensor/config.ts kernelSimulated), whose blocks are recorded and never put in the kernel.
 */
import { ttlSecondsFor } from '../core/policy';
import { ALL_UNUSED, type AgentConfig, kernelSimulated } from './config';
import { killGuardFrom, type KernelDetectorOptions } from './kernel/detector';
import type { ListenerReport } from './listeners';

/**
 * The redirect port in effect, else undefined: with redirectPort set, all-unused TCP, or a decoy
 * list whose probers are quarantined (the redirect follows the quarantine's `quarseen` set).
 * Only an enforcing agent redirects (kernelDetectorOptions).
 */
export function redirectPortOf(config: AgentConfig): number | undefined {
  if (config.redirectPort === false) return undefined;
  if (config.tcpPorts === ALL_UNUSED) return config.redirectPort;
  return config.enforce.nftables.quarantine.seconds > 0 ? config.redirectPort : undefined;
}

export function kernelDetectorOptions(config: AgentConfig, listeners: ListenerReport, own: readonly string[], enforcing: boolean): KernelDetectorOptions {
  const { policy, quarantine } = config.enforce.nftables;
  // simulation: the kernel reports as in monitor mode, and the pipeline records what it would block
  const nftables = enforcing && !kernelSimulated(config);
  // Kernel-speed blocking on the first decoy packet rests on an unverified source (a SYN can be
  // forged), so it follows the policy's spoof guard: only with blockUnverified.
  const kill = nftables && policy.blockUnverified ? ttlSecondsFor(1, policy) : undefined;
  const redirectPort = redirectPortOf(config);
  const kernelActs: Partial<KernelDetectorOptions> = nftables
    ? {
        quarantineSeconds: quarantine.seconds,
        quarantinePeriodSeconds: quarantine.periodSeconds,
        quarantineAnswer: quarantine.answer,
        // the kernel's own budgets: the policy's burst limit, per address family
        killPerMinute: policy.burstLimitPerMinute,
        quarantinePerMinute: policy.burstLimitPerMinute,
      }
    : // monitor mode must not affect traffic: no quarantine, no kernel block
      { quarantineSeconds: 0 };
  return {
    // ports a service holds were skipped by the listeners: the kernel must not watch them either
    tcpPorts: config.tcpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.tcp,
    udpPorts: config.udpPorts === ALL_UNUSED ? ALL_UNUSED : listeners.udp,
    exempt: [...config.ignore, ...own, ...config.guard.allowlist, ...config.guard.protectedCidrs],
    ...(kill !== undefined ? { killTtlSeconds: kill } : {}),
    ...kernelActs,
    // the redirect makes every unused port answer: an enforcing choice, not for monitor mode
    ...(nftables && redirectPort !== undefined ? { redirectPort } : {}),
    // what the in-kernel block must never add: the never-block guard, this host included
    killGuard: killGuardFrom({ ...config.guard, protectedCidrs: [...config.guard.protectedCidrs, ...own] }),
    excludePorts: {
      tcp: config.excludePorts.tcp === ALL_UNUSED ? [] : config.excludePorts.tcp,
      udp: config.excludePorts.udp === ALL_UNUSED ? [] : config.excludePorts.udp,
    },
  };
}
