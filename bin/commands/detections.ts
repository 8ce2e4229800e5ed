/**
 * `portsnare detections`: what the running agent detected lately, with the evidence (probes and
 * their kinds, handshake or not, the sensor) and what the local pipeline did — in monitor mode
 * too, where nothing is blocked. The agent keeps a bounded ring of recent detections
 * (GET /detections); without an agent there is nothing to show, and the command says so (exit 6).
 */
import type { Command } from 'commander';
import { parseDuration } from '../../core/commands';
import type { DetectionView } from './agent-client';
import { type CliDeps, printJson } from './context';
import { CliError, EXIT } from './errors';
import { requireAgent } from './local';
import { isoSeconds, table } from './output';

interface DetectionsOptions {
  readonly since?: string;
  readonly json?: boolean;
  readonly agent?: string;
  readonly config?: string;
  readonly stack?: string;
}

function evidence(detection: DetectionView): string {
  const shown = detection.probes.slice(0, 6).map((probe) => `${probe.protocol}/${probe.port} ${probe.kind}`);
  const more = detection.probes.length > shown.length ? ` +${detection.probes.length - shown.length}` : '';
  return `${shown.join(', ')}${more}`;
}

export function registerDetections(program: Command, deps: CliDeps): void {
  program
    .command('detections')
    .summary('recent detections with their evidence (monitor mode too)')
    .description(
      'Recent detections of the running agent, newest first: the source, its probes and their kinds, whether a handshake proved the source, the sensor, ' +
        'and what the local pipeline did (blocked, refused and why, or nothing when enforcement is off). The agent keeps the last 1,000; ' +
        'exit code 6 when no agent answers.',
    )
    .option('--since <duration>', 'only detections of this last while: 15m, 1h, 2d')
    .option('--json', 'print JSON')
    .option('--agent <url>', 'the local agent\'s control API (default http://127.0.0.1:9466, or health.port of the config)')
    .option('--config <file>', 'the local agent\'s config, for its health port (default /etc/portsnare/agent.yaml when present)')
    .option('--stack <name>', 'not available: a stack keeps no detection list (see the decide function\'s logs)')
    .action(async (options: DetectionsOptions) => {
      if (options.stack !== undefined) throw new CliError('detections are kept by the host agent only: a deployed stack records blocks (portsnare blocks --stack), not every detection', EXIT.usage);
      let sinceMs = 0;
      if (options.since !== undefined) {
        const seconds = parseDuration(options.since);
        if (seconds === undefined || seconds <= 0) throw new CliError(`invalid --since ${JSON.stringify(options.since)}: use a number with s, m, h, d or w (e.g. 15m, 1h)`, EXIT.usage);
        sinceMs = deps.now() - seconds * 1000;
      }
      const agent = await requireAgent({ env: deps.env, ...(options.agent !== undefined ? { agent: options.agent } : {}), ...(options.config !== undefined ? { config: options.config } : {}) });
      const answer = await agent.detections(sinceMs);
      if (options.json) {
        printJson(deps.io, {
          where: agent.where,
          seen: answer.seen,
          kept: answer.kept,
          enforcement: answer.enforcement,
          detections: answer.detections.map((d) => ({ ...d, at: new Date(d.at).toISOString() })),
        });
        return;
      }
      const window = options.since !== undefined ? ` in the last ${options.since}` : '';
      if (answer.detections.length === 0) {
        deps.io.out(`no detections${window} (${agent.where}; ${answer.seen} since the agent started)`);
        return;
      }
      deps.io.out(
        table(
          ['TIME', 'SOURCE', 'PROBES', 'HANDSHAKE', 'EVIDENCE', 'SENSOR', 'OUTCOME'],
          answer.detections.map((d) => [
            isoSeconds(d.at),
            d.attacker,
            String(d.probeCount),
            d.handshake ? 'yes' : 'no (forgeable)',
            evidence(d),
            d.sensorId,
            d.outcome ? `${d.outcome}${d.why && d.outcome !== 'block' ? `: ${d.why}` : ''}` : answer.enforcement === 'off' ? 'reported (monitor mode)' : '-',
          ]),
        ),
      );
      deps.io.out(`${answer.detections.length} detection${answer.detections.length === 1 ? '' : 's'}${window} (${agent.where}; ${answer.seen} since the agent started, the last ${answer.kept} kept)`);
    });
}
