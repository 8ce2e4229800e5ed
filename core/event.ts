/**
 * The `Scan Detected` event, version 1: the one contract between every sensor and the pipeline
 * (ARCHITECTURE.md, contracts). Validation errors name the field at fault. `handshake: true`
 * proves the source address; the policy (core/policy.ts, `blockUnverified`) decides the rest.
 *
 * `proof` (optional, added in place: v1 consumers that do not know it keep reading `handshake`)
 * says how the source address was proven:
 * - `handshake`: a TCP three-way handshake completed (a socket accepted it, or conntrack saw the
 *   client's ACK acknowledge our SYN/ACK): the client received our random ISN, so it owns the
 *   address (RFC 6528). Equivalent to `handshake: true`.
 * - `none`: only packets that can be forged (SYN, FIN, NULL, XMAS, ACK, UDP, …): anyone who can
 *   reach the sensor may have sent them with someone else's address. The sensor may have held
 *   the source for seconds (kernel quarantine); the pipeline blocks it only with blockUnverified.
 * When both are given they must agree; an event without `proof` is read from `handshake`.
 */
import { z } from 'zod';
import { tryCanonicalAddress } from './address';

export const EVENT_SOURCE_SENSOR = 'portsnare.sensor';
export const EVENT_SOURCE_CLI = 'portsnare.cli';
export const DETAIL_TYPE_SCAN_DETECTED = 'Scan Detected';
export const MAX_PROBES = 32;

export const PROBE_KINDS = ['connect', 'syn', 'fin', 'null', 'xmas', 'ack', 'maimon', 'window', 'udp', 'other'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];
export const PROOF_KINDS = ['handshake', 'none'] as const;
export type ProofKind = (typeof PROOF_KINDS)[number];
export const PROTOCOLS = ['tcp', 'udp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

const isoTimestamp = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 timestamp' });

export const ProbeSchema = z.strictObject({
  protocol: z.enum(PROTOCOLS),
  port: z.number().int().min(0).max(65535),
  kind: z.enum(PROBE_KINDS),
});
export type Probe = z.infer<typeof ProbeSchema>;

/** An address in any accepted spelling, turned into its canonical text. */
export const AddressSchema = z.string().transform((value, ctx) => {
  const canonical = tryCanonicalAddress(value);
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: `not an IPv4 or IPv6 address: ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return canonical;
});

export const ScanDetectedSchema = z
  .strictObject({
    version: z.literal(1),
    sensorId: z.string().min(1).max(256),
    attacker: AddressSchema,
    probes: z.array(ProbeSchema).min(1).max(MAX_PROBES),
    probeCount: z.number().int().min(1),
    handshake: z.boolean(),
    proof: z.enum(PROOF_KINDS).optional(),
    firstSeen: isoTimestamp,
    lastSeen: isoTimestamp,
  })
  .superRefine((event, ctx) => {
    if (Date.parse(event.lastSeen) < Date.parse(event.firstSeen)) {
      ctx.addIssue({ code: 'custom', path: ['lastSeen'], message: 'must not be before firstSeen' });
    }
    if (event.proof !== undefined && (event.proof === 'handshake') !== event.handshake) {
      ctx.addIssue({ code: 'custom', path: ['proof'], message: `"${event.proof}" contradicts handshake: ${event.handshake}` });
    }
    if (event.probeCount < event.probes.length) {
      ctx.addIssue({ code: 'custom', path: ['probeCount'], message: 'must be at least the number of distinct probes' });
    }
    const seen = new Set<string>();
    event.probes.forEach((probe, index) => {
      const key = `${probe.protocol}/${probe.port}/${probe.kind}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['probes', index], message: `duplicate probe ${key}` });
      seen.add(key);
    });
  });
export type ScanDetected = z.output<typeof ScanDetectedSchema>;

/** How the event's source was proven: its `proof`, or (older sensors) read from `handshake`. */
export function proofOf(event: Pick<ScanDetected, 'handshake' | 'proof'>): ProofKind {
  return event.proof ?? (event.handshake ? 'handshake' : 'none');
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** "probes.0.port: Too big: expected number to be <=65535; attacker: not an IPv4 …" */
export function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

export function parseWith<S extends z.ZodType>(schema: S, input: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(input);
  return result.success ? { ok: true, value: result.data } : { ok: false, error: formatZodError(result.error) };
}

/** Validates a `Scan Detected` detail; never throws. */
export function parseScanDetected(input: unknown): ParseResult<ScanDetected> {
  return parseWith(ScanDetectedSchema, input);
}

/**
 * The `Sensor Heartbeat` event: every cloud sensor puts one on the bus every
 * SENSOR_HEARTBEAT_INTERVAL_SECONDS (source EVENT_SOURCE_SENSOR), so a sensor that went quiet
 * raises an alarm (lib/SensorHeartbeat.ts) instead of looking like a quiet internet. It carries
 * no detection and reaches no function.
 */
export const DETAIL_TYPE_SENSOR_HEARTBEAT = 'Sensor Heartbeat';
export const SENSOR_HEARTBEAT_INTERVAL_SECONDS = 300;
/** Every detail type a sensor may put on the bus (its IAM policy allows exactly these). */
export const SENSOR_DETAIL_TYPES = [DETAIL_TYPE_SCAN_DETECTED, DETAIL_TYPE_SENSOR_HEARTBEAT] as const;

export const SensorHeartbeatSchema = z.strictObject({
  version: z.literal(1),
  sensorId: z.string().min(1).max(256),
  /** when the agent sent it */
  sentAt: isoTimestamp,
  /** seconds since the agent started */
  uptimeSeconds: z.number().int().min(0).optional(),
});
export type SensorHeartbeat = z.output<typeof SensorHeartbeatSchema>;
