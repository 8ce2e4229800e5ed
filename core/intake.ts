/**
 * What an EventBridge event asks of the pipeline: sightings to decide on, an unblock, or
 * nothing (malformed or not ours). Pure; the decide function is a thin shell around this.
 *
 * Accepted:
 * - `Scan Detected` (core/event.ts) from portsnare.sensor and portsnare.cli. From the CLI it is a
 *   manual block; a sensorId starting with "flowlogs/" marks the VPC Flow Logs converter. A
 *   sensor's sighting is verified only with `proof: "handshake"` (or, without `proof`,
 *   `handshake: true`).
 * - `Block Requested` / `Unblock Requested` (core/commands.ts) from portsnare.cli.
 * - GuardDuty findings (source aws.guardduty, detail-type "GuardDuty Finding") of type
 *   Recon:EC2/PortProbeUnprotectedPort: the remote address of every port probe detail probed
 *   one of our instances, and is blocked.
 * - Recon:EC2/Portscan is the opposite: "an EC2 instance is performing outbound port scans to a
 *   remote host" (the finding types page below). The remote address is the victim; blocking it
 *   would let whoever runs code on our instance choose whom we block. It becomes an alert about
 *   our own instance, never a block.
 * GuardDuty writes null for absent values; a null field is treated as absent, so one null never
 * drops the whole finding, and a port probe detail without an address is skipped on its own.
 *   https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-ec2.html
 *   https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings_cloudwatch.html
 */
import { z } from 'zod';
import { familyOf, tryCanonicalAddress, tryParseCidr } from './address';
import { BlockRequestedSchema, DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED, UnblockRequestedSchema } from './commands';
import { DETAIL_TYPE_SCAN_DETECTED, EVENT_SOURCE_CLI, EVENT_SOURCE_SENSOR, parseScanDetected, parseWith, proofOf, type ScanDetected } from './event';
import type { Sighting } from './policy';

export const EVENT_SOURCE_GUARDDUTY = 'aws.guardduty';
export const DETAIL_TYPE_GUARDDUTY_FINDING = 'GuardDuty Finding';
export const GUARDDUTY_PORT_PROBE = 'Recon:EC2/PortProbeUnprotectedPort';
export const GUARDDUTY_PORTSCAN = 'Recon:EC2/Portscan';
export const FLOWLOGS_SENSOR_PREFIX = 'flowlogs/';

export const EnvelopeSchema = z.object({
  id: z.string().min(1).max(256),
  source: z.string().min(1),
  'detail-type': z.string().min(1),
  time: z.string().optional(),
  detail: z.unknown(),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

export type Intake =
  | { readonly kind: 'sightings'; readonly sightings: readonly Sighting[] }
  | { readonly kind: 'unblock'; readonly target: string; readonly requestedBy: string; readonly eventId: string }
  | { readonly kind: 'alert'; readonly alert: 'own-instance-scanning'; readonly instanceId: string | undefined; readonly remote: string | undefined; readonly findingId: string | undefined }
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'ignored'; readonly reason: string };

const RemoteIp = z.object({ ipAddressV4: z.string().nullish(), ipAddressV6: z.string().nullish() }).loose();

const GuardDutyDetailSchema = z
  .object({
    id: z.string().nullish(),
    type: z.string(),
    updatedAt: z.string().nullish(),
    resource: z
      .object({ instanceDetails: z.object({ instanceId: z.string().nullish() }).loose().nullish() })
      .loose()
      .nullish(),
    service: z
      .object({
        count: z.number().int().min(1).nullish().catch(undefined),
        eventFirstSeen: z.string().nullish(),
        eventLastSeen: z.string().nullish(),
        action: z
          .object({
            portProbeAction: z
              .object({ portProbeDetails: z.array(z.object({ remoteIpDetails: RemoteIp.nullish().catch(undefined) }).loose().nullish().catch(undefined)).nullish() })
              .loose()
              .nullish(),
            networkConnectionAction: z.object({ remoteIpDetails: RemoteIp.nullish() }).loose().nullish(),
          })
          .loose(),
      })
      .loose(),
  })
  .loose();

function time(text: string | null | undefined, fallback: number): number {
  const parsed = text === undefined || text === null ? NaN : Date.parse(text);
  return Number.isFinite(parsed) ? parsed : fallback;
}

function guardDutyAddress(remote: z.infer<typeof RemoteIp> | null | undefined): string | undefined {
  if (!remote) return undefined;
  return tryCanonicalAddress(remote.ipAddressV4 ?? remote.ipAddressV6 ?? '');
}

/**
 * The sighting a `Scan Detected` event is, in the cloud (interpretEvent) and on the host
 * (sensor/local/pipeline.ts), so both read `verified`, `reason` and the hits alike.
 */
export function sightingOfScan(event: ScanDetected, eventId: string, manual: boolean): Sighting {
  return {
    target: event.attacker,
    family: familyOf(event.attacker),
    reason: manual ? 'manual' : event.sensorId.startsWith(FLOWLOGS_SENSOR_PREFIX) ? 'flowlogs' : 'sensor',
    eventId,
    sensorId: event.sensorId,
    firstSeen: Date.parse(event.firstSeen),
    lastSeen: Date.parse(event.lastSeen),
    // an operator's request is no probe (core/decisions.ts)
    hits: manual ? 0 : event.probeCount,
    // Only a completed handshake proves a sensor's source. A `none` sighting (forgeable packets;
    // the sensor's kernel may have held it for seconds) is unverified: the policy blocks it in
    // the cloud — NACL or WAF — only with blockUnverified (off by default), so a forged packet
    // never becomes a fleet-wide block by default.
    verified: manual || proofOf(event) === 'handshake',
    // the decoy ports probed, each once (core/policy.ts keeps the record's last MAX_REMEMBERED_PORTS)
    ...(manual || event.probes.length === 0 ? {} : { ports: [...new Set(event.probes.map((probe) => probe.port))] }),
  };
}

/** Reads one EventBridge event; never throws. `now` stands in for missing times. */
export function interpretEvent(input: unknown, now: number): Intake {
  const envelope = parseWith(EnvelopeSchema, input);
  if (!envelope.ok) return { kind: 'malformed', reason: `envelope: ${envelope.error}` };
  const { id, source, detail } = envelope.value;
  const detailType = envelope.value['detail-type'];

  if (detailType === DETAIL_TYPE_SCAN_DETECTED && (source === EVENT_SOURCE_SENSOR || source === EVENT_SOURCE_CLI)) {
    const parsed = parseScanDetected(detail);
    if (!parsed.ok) return { kind: 'malformed', reason: `detail: ${parsed.error}` };
    return { kind: 'sightings', sightings: [sightingOfScan(parsed.value, id, source === EVENT_SOURCE_CLI)] };
  }

  if (source === EVENT_SOURCE_CLI && detailType === DETAIL_TYPE_BLOCK_REQUESTED) {
    const parsed = parseWith(BlockRequestedSchema, detail);
    if (!parsed.ok) return { kind: 'malformed', reason: `detail: ${parsed.error}` };
    const request = parsed.value;
    const cidr = tryParseCidr(request.target, false);
    if (!cidr) return { kind: 'malformed', reason: 'detail.target: not an address or CIDR' };
    const at = time(envelope.value.time, now);
    return {
      kind: 'sightings',
      sightings: [
        {
          target: request.target,
          family: cidr.family,
          reason: 'manual',
          eventId: id,
          sensorId: `cli/${request.requestedBy}`,
          firstSeen: at,
          lastSeen: at,
          hits: 0,
          verified: true,
          ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
          ...(request.reason !== undefined ? { note: request.reason } : {}),
          ...(request.replace === true ? { replace: true } : {}),
        },
      ],
    };
  }

  if (source === EVENT_SOURCE_CLI && detailType === DETAIL_TYPE_UNBLOCK_REQUESTED) {
    const parsed = parseWith(UnblockRequestedSchema, detail);
    if (!parsed.ok) return { kind: 'malformed', reason: `detail: ${parsed.error}` };
    return { kind: 'unblock', target: parsed.value.target, requestedBy: parsed.value.requestedBy, eventId: id };
  }

  if (source === EVENT_SOURCE_GUARDDUTY && detailType === DETAIL_TYPE_GUARDDUTY_FINDING) {
    const parsed = parseWith(GuardDutyDetailSchema, detail);
    if (!parsed.ok) return { kind: 'malformed', reason: `detail: ${parsed.error}` };
    const finding = parsed.value;
    let addresses: Array<string | undefined>;
    if (finding.type === GUARDDUTY_PORT_PROBE) {
      addresses = (finding.service.action.portProbeAction?.portProbeDetails ?? []).map((d) => guardDutyAddress(d?.remoteIpDetails));
    } else if (finding.type === GUARDDUTY_PORTSCAN) {
      return {
        kind: 'alert',
        alert: 'own-instance-scanning',
        instanceId: finding.resource?.instanceDetails?.instanceId ?? undefined,
        remote: guardDutyAddress(finding.service.action.networkConnectionAction?.remoteIpDetails),
        findingId: finding.id ?? undefined,
      };
    } else {
      return { kind: 'ignored', reason: `GuardDuty finding type ${finding.type} is not a reconnaissance portsnare acts on` };
    }
    const unique = [...new Set(addresses.filter((a): a is string => a !== undefined))];
    if (unique.length === 0) return { kind: 'malformed', reason: `detail.service.action: no remote IP address in the ${finding.type} finding` };
    const at = time(envelope.value.time, now);
    const firstSeen = time(finding.service.eventFirstSeen, at);
    const lastSeen = Math.max(firstSeen, time(finding.service.eventLastSeen, at));
    return {
      kind: 'sightings',
      sightings: unique.map((address) => ({
        target: address,
        family: familyOf(address),
        reason: 'guardduty' as const,
        eventId: id,
        sensorId: `guardduty/${finding.id ?? 'finding'}`,
        firstSeen,
        lastSeen,
        hits: finding.service.count ?? 1,
        // GuardDuty reports traffic it observed on the instance; it is trusted as a source.
        verified: true,
      })),
    };
  }

  return { kind: 'ignored', reason: `not a portsnare event: source ${source}, detail-type ${detailType}` };
}
