/**
 * A minimal host agent for the labs, run inside the sensor namespace: the kernel detector, the
 * nftables enforcer and the local pipeline wired directly (no aggregator, sinks or sockets), so
 * the labs can exercise the kernel side on its own. Options come as JSON in argv[2]; every probe
 * and decision is one JSON line on stdout; "ready" once the rules are loaded; SIGTERM stops it
 * (detector rules removed, blocks kept). `policy` is the pipeline's policy (default: blockUnverified
 * on, what the first kernel labs assumed); `redirectListen` opens the socket the redirect leads
 * to (the agent's RedirectListener, as the agent does with redirectPort): each connection it
 * accepts is a `proof` line and a proven event for the pipeline — the only proof there is.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NeverBlockGuard } from '../../../core/guard';
import { PolicySettingsSchema } from '../../../core/policy';
import { readKernelBlocks } from '../../../sensor/kernel/sets';
import { KernelDetector, killGuardFrom, type KernelDetectorOptions, type KernelProbe } from '../../../sensor/kernel/detector';
import type { Hit } from '../../../sensor/listeners';
import { RedirectListener } from '../../../sensor/listeners/redirect';
import { NftEnforcer } from '../../../sensor/local/nft';
import { LocalPipeline } from '../../../sensor/local/pipeline';
import { FileStore } from '../../../sensor/local/store';

interface DriverOptions {
  readonly detector: Omit<KernelDetectorOptions, 'killGuard'>;
  readonly guard: { allowlist?: string[]; protectedCidrs?: string[]; blockableSpecialCidrs?: string[] };
  readonly stateDirectory?: string;
  readonly policy?: Record<string, unknown>;
  readonly redirectListen?: boolean;
}

const write = (line: object): void => void process.stdout.write(JSON.stringify(line) + '\n');

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as DriverOptions;
  const guard = NeverBlockGuard.from(options.guard);
  const guardSettings = { allowlist: options.guard.allowlist ?? [], protectedCidrs: options.guard.protectedCidrs ?? [], blockSpecialRanges: false, blockableSpecialCidrs: options.guard.blockableSpecialCidrs ?? [] };
  const enforcer = new NftEnforcer();
  const store = new FileStore(options.stateDirectory ?? mkdtempSync(join(tmpdir(), 'portsnare-driver-')));
  await store.load();
  const policy = PolicySettingsSchema.parse(options.policy ?? { blockUnverified: true });
  const pipeline = new LocalPipeline({ store, enforcer, policy, guard, logger: (line) => write({ type: 'log', ...line }) });
  await pipeline.restore();
  const detector = new KernelDetector({ ...options.detector, killGuard: killGuardFrom(guardSettings) });
  let n = 0;
  const handle = (hit: Pick<Hit, 'source' | 'protocol' | 'port' | 'kind' | 'handshake' | 'at'>, kernelTtl: number | undefined): void => {
    const event = {
      version: 1 as const,
      sensorId: 'driver',
      attacker: hit.source,
      probes: [{ protocol: hit.protocol, port: hit.port, kind: hit.kind }],
      probeCount: 1,
      handshake: hit.handshake,
      firstSeen: new Date(hit.at).toISOString(),
      lastSeen: new Date(hit.at).toISOString(),
    };
    pipeline.handle(event, `driver-${++n}`, kernelTtl !== undefined ? { kernelBlockTtlSeconds: kernelTtl } : {}).then(
      (decision) => write({ type: 'decision', attacker: hit.source, action: decision.action, why: decision.why }),
      (error: unknown) => write({ type: 'error', error: String(error) }),
    );
  };
  if (options.redirectListen && options.detector.redirectPort !== undefined) {
    const redirect = new RedirectListener({
      port: options.detector.redirectPort,
      onHit: (hit) => {
        write({ type: 'proof', ...hit });
        handle(hit, undefined);
      },
    });
    await redirect.start();
  }
  detector.on('probe', (probe: KernelProbe) => {
    write({ type: 'probe', ...probe });
    handle({ ...probe, handshake: false }, probe.blockedByKernel ? options.detector.killTtlSeconds : undefined);
  });
  detector.on('error', (error: Error) => write({ type: 'error', error: error.message }));
  await detector.start();
  write({ type: 'ready', kept: detector.keptPorts() });
  const stop = (): void => {
    detector.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        write({ type: 'error', error: String(error) });
        process.exit(1);
      },
    );
  };
  // commands on stdin, one JSON object a line: {"exempt": [...]} or {"read": true}
  let input = '';
  process.stdin.setEncoding('utf8').on('data', (text: string) => {
    input += text;
    let nl: number;
    while ((nl = input.indexOf('\n')) >= 0) {
      const command = JSON.parse(input.slice(0, nl)) as { exempt?: string[]; read?: boolean };
      input = input.slice(nl + 1);
      if (command.read) {
        readKernelBlocks().then(
          (held) => write({ type: 'kernel-blocks', ...held }),
          (error: unknown) => write({ type: 'error', error: String(error) }),
        );
      }
      if (command.exempt) {
        detector.updateExempt(command.exempt).then(
          () => write({ type: 'exempt-updated' }),
          (error: unknown) => write({ type: 'error', error: String(error) }),
        );
      }
    }
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  write({ type: 'error', error: String(error) });
  process.exit(1);
});
