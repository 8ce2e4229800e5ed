/**
 * enum_revealed_sS / enum_revealed_sT (issue 3, item 11): how many of 8 real services one
 * `nmap --top-ports 1000 -T4` scan finds open on a host running the agent with stealth
 * detection on every unused port ("all-unused") and nftables enforcement on. Two network
 * namespaces joined by a veth pair (test/lab/netns.ts); the agent restarts with a fresh state
 * and an empty table before each run (the blocks reset). Median of 5 runs per scan type.
 *
 * The services sit on ports a typical web/database host exposes. nmap probes a few popular
 * ports first (80, 23, 443, 21, 22, 25, …; nmap.cc random_port_cheat), so a service on 80 is
 * probed before the first unused port (23): that one is revealed before any decoy is touched.
 */
import { ATTACKER4, Lab, SENSOR4, SENSOR6, TESTNET, labUnavailable, openPorts, type AgentProcess, type DriverProcess } from '../test/lab/netns';
import type { BenchSuite, Figure } from './suite';

export const SERVICES = [22, 25, 80, 443, 3306, 5432, 8080, 8443];
const RUNS = Number(process.env.ENUM_RUNS ?? 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface RunResult {
  readonly scan: string;
  readonly revealed: number[];
  readonly seconds: number;
  readonly blockedByKernel: boolean;
}

export type Mode = 'agent' | 'kernel-host';

async function scanOnce(lab: Lab, scan: string): Promise<{ revealed: number[]; seconds: number; blockedByKernel: boolean }> {
  const started = Date.now();
  // --max-retries 1 --min-rate 1000 only shorten the run (from minutes to seconds: once the source
  // is blocked every probe times out and nmap slows down for what it takes as congestion). The
  // ports revealed are those answered before the block; sending faster can only let more probes
  // through before it, never fewer, so the figure is if anything pessimistic.
  const out = await lab.inAttacker('nmap', ['-n', '-Pn', scan, '--top-ports', '1000', '-T4', '--max-retries', '1', '--min-rate', '1000', SENSOR4], 300_000);
  if (out.code !== 0) throw new Error(`nmap failed: ${out.stderr}`);
  const seconds = (Date.now() - started) / 1000;
  const kill = await lab.inSensor('nft', ['list', 'chain', 'inet', 'portsnare', 'probe']);
  const killed = /add @blocked4 \{ ip saddr timeout [0-9a-z]+ \} counter packets (\d+)/.exec(kill.stdout);
  return { revealed: openPorts(out.stdout).filter((p) => SERVICES.includes(p)), seconds, blockedByKernel: Number(killed?.[1] ?? 0) > 0 };
}

/** The kernel side alone (test/lab/drivers/kernel-host.ts): what the mechanism gives without the agent's wiring. */
async function oneKernelHostRun(lab: Lab, scan: '-sS' | '-sT'): Promise<RunResult> {
  await lab.inSensor('nft', ['delete', 'table', 'inet', 'portsnare']);
  const host: DriverProcess = await lab.startKernelHost({
    detector: { tcpPorts: 'all-unused', udpPorts: [], exempt: [SENSOR4, SENSOR6, '127.0.0.1', '::1'], killTtlSeconds: 3600 },
    guard: { blockableSpecialCidrs: TESTNET },
  });
  try {
    return { scan, ...(await scanOnce(lab, scan)) };
  } finally {
    await host.stop();
  }
}

async function oneRun(lab: Lab, scan: '-sS' | '-sT', index: number, mode: Mode): Promise<RunResult> {
  if (mode === 'kernel-host') return oneKernelHostRun(lab, scan);
  await lab.inSensor('nft', ['delete', 'table', 'inet', 'portsnare']); // may not exist: fine
  const agent: AgentProcess = await lab.startAgent(
    {
      tcpPorts: 'all-unused',
      udpPorts: [],
      stealth: true,
      trigger: 1,
      dedupeSeconds: 60,
      enforce: { nftables: { enabled: true, policy: { blockUnverified: true, baseTtlSeconds: 3600 } } },
      guard: { blockableSpecialCidrs: TESTNET },
      stateDirectory: `${lab.dir}/state-${scan}-${index}`,
      health: { enabled: false },
    },
    `bench-${scan}-${index}`,
  );
  try {
    const result = await scanOnce(lab, scan);
    await agent.waitFor(() => agent.events.find((e) => e.attacker === ATTACKER4), 'the scan event', 10_000);
    return { scan, ...result };
  } finally {
    await agent.stop();
  }
}

export async function measure(runs = RUNS, mode: Mode = 'agent', log: (line: string) => void = console.log): Promise<{ sS: RunResult[]; sT: RunResult[] }> {
  const why = labUnavailable();
  if (why) throw new Error(`enumeration bench needs the lab: ${why}`);
  const lab = await Lab.create('bench');
  try {
    await lab.startServices(SERVICES);
    const results = { sS: [] as RunResult[], sT: [] as RunResult[] };
    for (const scan of ['-sS', '-sT'] as const) {
      for (let i = 0; i < runs; i++) {
        const r = await oneRun(lab, scan, i, mode);
        log(`${mode} ${scan} run ${i + 1}: revealed ${r.revealed.length} [${r.revealed.join(', ')}] in ${r.seconds.toFixed(1)} s; kernel kill: ${r.blockedByKernel}`);
        (scan === '-sS' ? results.sS : results.sT).push(r);
      }
    }
    return results;
  } finally {
    await lab.destroy();
  }
}

export const suite: BenchSuite = {
  title: 'Enumeration against a host agent: real services revealed to one nmap --top-ports 1000 -T4 scan',
  async run(): Promise<Figure[]> {
    const { sS, sT } = await measure(RUNS, 'agent');
    const kernel = await measure(RUNS, 'kernel-host');
    const note = (rs: RunResult[], scan: string): string =>
      `8 TCP services (${SERVICES.join(',')}), agent stealth all-unused + nftables (blockUnverified, kernel kill: ${rs.every((r) => r.blockedByKernel) ? 'yes' : rs.some((r) => r.blockedByKernel) ? 'some runs' : 'no'}); ` +
      `nmap ${scan} --top-ports 1000 -T4 (--max-retries 1 --min-rate 1000) from a second netns; median of ${rs.length} runs (${rs.map((r) => r.revealed.length).join('/')}; blocks reset between runs), ${median(rs.map((r) => r.seconds)).toFixed(0)} s per scan`;
    return [
      { name: 'enum_revealed_sS', value: median(sS.map((r) => r.revealed.length)), unit: 'services', note: note(sS, '-sS') },
      { name: 'enum_revealed_sT', value: median(sT.map((r) => r.revealed.length)), unit: 'services', note: note(sT, '-sT') },
      {
        name: 'enum_revealed_sS_kernel_only',
        value: median(kernel.sS.map((r) => r.revealed.length)),
        unit: 'services',
        note: `same scan against the kernel detector + enforcer alone (no agent; in-kernel block on the first decoy packet); runs ${kernel.sS.map((r) => r.revealed.length).join('/')}`,
      },
      {
        name: 'enum_revealed_sT_kernel_only',
        value: median(kernel.sT.map((r) => r.revealed.length)),
        unit: 'services',
        note: `same scan against the kernel detector + enforcer alone (no agent; in-kernel block on the first decoy packet); runs ${kernel.sT.map((r) => r.revealed.length).join('/')}`,
      },
    ];
  },
};
