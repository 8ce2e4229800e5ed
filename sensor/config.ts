/**
 * The agent's configuration: parsed from JSON or YAML, validated at start, failing fast with the
 * key and the value at fault, e.g. `tcpPorts: "70000" is not a port (1-65535)`. docs/agent-config.md
 * lists every key with its default and, in brackets, Portsentry's name for it.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isAddress, tryParseCidr } from '../core/address';
import { AgentDigestSchema } from '../core/digest';
import { GuardSettingsSchema } from '../core/guard';
import { BLOCK_REASONS, PolicySettingsSchema, type SimulationSettings } from '../core/policy';

/**
 * Portsentry 2.0's conservative default lists (legacy services nobody should use today), and on
 * TCP also the unused ones among the popular ports nmap probes first whatever the order it picks
 * (23, 135, 139, 199, 256, 445, 554, 1025, 1720, 1723, 3389, 5900: telnet, RPC, SMB, RDP, VNC…;
 * nmap moves 28 popular ports to the front of its randomized list): with only Portsentry's list,
 * `nmap -sS --top-ports 1000` met a real service on 80 or 443 before its first decoy (2 of 8
 * revealed, bench/results.json). A port a service listens on is never a decoy (EADDRINUSE: the
 * port is skipped, and stealth watches only the ports the agent bound).
 */
export const DEFAULT_TCP_PORTS = '1,7,9,11,13,15,17,19,20,21,23,70,79,111,113,119,135,139,199,256,389,445,512-515,540,543-544,554,873,989,990,992,1025,1080,1720,1723,3389,5900';
export const DEFAULT_UDP_PORTS = '7,9,13,19,111,389,513,517-518';
export const DEFAULT_HEALTH_PORT = 9466;
export const ALL_UNUSED = 'all-unused';
/**
 * The local port new TCP connections to unused ports are redirected to (stealth with nftables
 * enforcement), so a connect scan completes a handshake there (the socket's accept: proof): from
 * every source in all-unused mode, from sources seen probing a decoy this period in list mode.
 * Above Linux's default ephemeral range (32768-60999).
 */
export const DEFAULT_REDIRECT_PORT = 61000;
/** the kernel's hold on a first forgeable decoy packet (docs/kernel.md, "Quarantine") */
export const DEFAULT_QUARANTINE = { seconds: 10, periodSeconds: 3600, answer: 'reset' as const };
export type PortList = number[] | typeof ALL_UNUSED;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** README.md "Exit codes": an invalid config file is a usage error, whichever command reads it */
  readonly exitCode = 2;
}

const MAX_PORT = 65535;

/** "1,7,9,11-15" | 23 | [23, "100-110"] → sorted distinct ports; a message naming the bad part otherwise. */
export function parsePortList(input: unknown, allowAllUnused = true): { ok: true; value: PortList } | { ok: false; error: string } {
  if (typeof input === 'string' && input.trim().toLowerCase() === ALL_UNUSED) {
    return allowAllUnused ? { ok: true, value: ALL_UNUSED } : { ok: false, error: `"${ALL_UNUSED}" is not allowed here` };
  }
  const parts: unknown[] = typeof input === 'string' ? input.split(',') : Array.isArray(input) ? input : [input];
  const ports = new Set<number>();
  for (const part of parts) {
    if (typeof part === 'number') {
      if (!Number.isInteger(part) || part < 1 || part > MAX_PORT) return { ok: false, error: `${JSON.stringify(part)} is not a port (1-${MAX_PORT})` };
      ports.add(part);
      continue;
    }
    if (typeof part !== 'string') return { ok: false, error: `${safeJson(part)} is not a port or range ("1,7,9,11-15")` };
    const text = part.trim();
    if (text === '' && typeof input === 'string' && input.trim() === '') continue;
    const range = /^(\d{1,6})\s*-\s*(\d{1,6})$/.exec(text);
    if (range) {
      const lo = Number(range[1]);
      const hi = Number(range[2]);
      if (lo < 1 || lo > MAX_PORT) return { ok: false, error: `"${range[1]}" is not a port (1-${MAX_PORT})` };
      if (hi < 1 || hi > MAX_PORT) return { ok: false, error: `"${range[2]}" is not a port (1-${MAX_PORT})` };
      if (lo > hi) return { ok: false, error: `"${text}" is a range that ends before it starts` };
      for (let port = lo; port <= hi; port++) ports.add(port);
      continue;
    }
    if (!/^\d+$/.test(text)) return { ok: false, error: `"${text}" is not a port or range ("1,7,9,11-15")` };
    const port = Number(text);
    if (port < 1 || port > MAX_PORT) return { ok: false, error: `"${text}" is not a port (1-${MAX_PORT})` };
    ports.add(port);
  }
  return { ok: true, value: [...ports].sort((a, b) => a - b) };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const portListSchema = (allowAllUnused: boolean) =>
  z.unknown().transform((value, ctx): PortList => {
    const parsed = parsePortList(value, allowAllUnused);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.error, params: { hasValue: true } });
      return z.NEVER;
    }
    return parsed.value;
  });

/**
 * Why an address or CIDR of the config is not accepted, or undefined. One syntax for `ignore`,
 * the guard's lists and the command line's `block`/`allow`: a CIDR with host bits set is refused
 * with the network form suggested (198.51.100.7/24 → 198.51.100.0/24), never silently widened.
 */
export function cidrProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && tryParseCidr(value) !== undefined) return undefined;
  const loose = typeof value === 'string' ? tryParseCidr(value, true) : undefined;
  if (loose) return `${safeJson(value)} has host bits set: write the network, ${loose.text}`;
  return `${safeJson(value)} is not an IPv4/IPv6 address or CIDR`;
}

const CidrText = z.string().superRefine((value, ctx) => {
  const problem = cidrProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, params: { hasValue: true } });
});

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

const TriggerSchema = z
  .union([
    z.number().int().min(1).max(10_000).transform((hits) => ({ hits, windowSeconds: 60 })),
    z.strictObject({
      /** hits within the window before a source counts as a scanner [SCAN_TRIGGER + 1] */
      hits: z.number().int().min(1).max(10_000).default(1),
      windowSeconds: z.number().int().min(1).max(86_400).default(60),
    }),
  ])
  .default({ hits: 1, windowSeconds: 60 });

export type BannerConfig = string | Record<string, string>;
const MAX_BANNER = 4096;
/** one string for every port, or a map of port / range / "*" to a string [PORT_BANNER] */
const BannerSchema = z
  .unknown()
  .transform((value, ctx): BannerConfig | undefined => {
    if (value === undefined || value === null) return undefined;
    const fail = (message: string): never => {
      ctx.addIssue({ code: 'custom', message, params: { hasValue: true } });
      return z.NEVER as never;
    };
    if (typeof value === 'string') return value.length <= MAX_BANNER ? value : fail(`is longer than ${MAX_BANNER} characters`);
    if (typeof value !== 'object' || Array.isArray(value)) return fail(`${truncate(safeJson(value))} is neither a string nor a map of port to string`);
    const map: Record<string, string> = {};
    for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
      if (key !== '*' && !parsePortList(key, false).ok) return fail(`key ${safeJson(key)} is not a port, a range or "*"`);
      if (typeof text !== 'string') return fail(`${key}: ${truncate(safeJson(text))} is not a string`);
      if (text.length > MAX_BANNER) return fail(`${key}: longer than ${MAX_BANNER} characters`);
      map[key] = text;
    }
    return map;
  })
  .optional();

const StdoutSink = z.strictObject({ type: z.literal('stdout') });
const FileSink = z.strictObject({ type: z.literal('file'), path: z.string().min(1) });
const EventBridgeSink = z.strictObject({
  type: z.literal('eventbridge'),
  /** the event bus name or ARN */
  busName: z.string().min(1).max(1600),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS Region such as eu-west-1').optional(),
  /** another endpoint (VPC endpoint, a local test server) */
  endpoint: z.url().optional(),
});
const SinkSchema = z.union([
  z.enum(['stdout']).transform(() => ({ type: 'stdout' as const })),
  z.discriminatedUnion('type', [StdoutSink, FileSink, EventBridgeSink]),
]);
export type SinkConfig = z.output<typeof SinkSchema>;

function defaultPorts(text: string): number[] {
  const parsed = parsePortList(text, false);
  return parsed.ok && parsed.value !== ALL_UNUSED ? parsed.value : [];
}

const defaultStateDirectory = (): string => process.env.STATE_DIRECTORY?.split(':')[0] || '/var/lib/portsnare';

export const AgentConfigSchema = z
  .strictObject({
    /** the sensor's name in events; default: the EC2 instance id when the host is one, else the hostname */
    sensorId: z.string().min(1).max(256).optional(),
    /** addresses the decoy sockets bind to */
    listen: z
      .array(z.string().refine(isAddress, { error: (i) => `${safeJson(i.input)} is not an IPv4/IPv6 address` }))
      .min(1)
      .default(['0.0.0.0', '::']),
    /** decoy TCP ports: "1,7,9,11-15", a list, or "all-unused" (needs stealth) [TCP_PORTS] */
    tcpPorts: portListSchema(true).default(() => defaultPorts(DEFAULT_TCP_PORTS)),
    /** decoy UDP ports, same forms [UDP_PORTS] */
    udpPorts: portListSchema(true).default(() => defaultPorts(DEFAULT_UDP_PORTS)),
    /** ports never watched in all-unused mode (beyond those a service holds) [ADVANCED_EXCLUDE_TCP/UDP] */
    excludePorts: z
      .strictObject({ tcp: portListSchema(false).default([]), udp: portListSchema(false).default([]) })
      .default({ tcp: [], udp: [] }),
    /** sources never reported [IGNORE_FILE] */
    ignore: z.array(CidrText).default([]),
    trigger: TriggerSchema,
    /** one event per attacker per this many seconds */
    dedupeSeconds: z.number().int().min(0).max(86_400).default(60),
    banner: BannerSchema,
    /** kernel detection of SYN, FIN, NULL, XMAS, ACK, Maimon, Window and UDP probes (root or CAP_NET_ADMIN) */
    stealth: z.boolean().default(false),
    enforce: z
      .strictObject({
        nftables: z
          .strictObject({
            enabled: z.boolean().default(false),
            policy: PolicySettingsSchema.default(PolicySettingsSchema.parse({})),
            /** with stealth: the kernel holds a source on its first forgeable decoy packet (0 seconds: off) */
            quarantine: z
              .strictObject({
                seconds: z.number().int().min(0).max(300).default(DEFAULT_QUARANTINE.seconds),
                periodSeconds: z.number().int().min(1).max(86_400).default(DEFAULT_QUARANTINE.periodSeconds),
                answer: z.enum(['reset', 'drop']).default(DEFAULT_QUARANTINE.answer),
              })
              .default(DEFAULT_QUARANTINE),
            /**
             * simulation (docs/agent-config.md): blocks are decided and recorded, and no nftables
             * element is put for a simulated one. `true`: every block, and the kernel detector blocks
             * nobody (as in monitor mode); `{ "inputs": [...] }`: the blocks of those reasons (BLOCK_REASONS)
             */
            simulate: z
              .union([z.boolean(), z.strictObject({ inputs: z.array(z.enum(BLOCK_REASONS)).min(1, 'must name at least one input; true simulates every block') })], {
                error: `must be true, false or { "inputs": [...] } with inputs among ${BLOCK_REASONS.join(', ')}`,
              })
              .default(false),
          })
          .default({ enabled: false, policy: PolicySettingsSchema.parse({}), quarantine: DEFAULT_QUARANTINE, simulate: false }),
      })
      .default({ nftables: { enabled: false, policy: PolicySettingsSchema.parse({}), quarantine: DEFAULT_QUARANTINE, simulate: false } }),
    /**
     * stealth + nftables: unused TCP ports are redirected here so connect scans complete (false:
     * off) — for every source with all-unused, for sources seen probing a decoy with a list
     */
    redirectPort: z.union([z.number().int().min(1).max(MAX_PORT), z.literal(false)]).default(DEFAULT_REDIRECT_PORT),
    guard: GuardSettingsSchema.default(GuardSettingsSchema.parse({})),
    sinks: z.array(SinkSchema).default([{ type: 'stdout' }]),
    spool: z
      .strictObject({
        /** default: <stateDirectory>/spool */
        directory: z.string().min(1).optional(),
        maxBytes: z.number().int().min(4096).max(2 ** 40).default(64 * 2 ** 20),
      })
      .default({ maxBytes: 64 * 2 ** 20 }),
    stateDirectory: z.string().min(1).default(defaultStateDirectory),
    health: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z
          .string()
          .refine(isLoopback, { error: (i) => `${safeJson(i.input)} is not a loopback address (the control API is local only)` })
          .default('127.0.0.1'),
        /** 0 picks a free port (tests) */
        port: z.number().int().min(0).max(MAX_PORT).default(DEFAULT_HEALTH_PORT),
      })
      .default({ enabled: true, host: '127.0.0.1', port: DEFAULT_HEALTH_PORT }),
    /** the control plane (sensor/health.ts, docs/agent-config.md "Control") */
    control: z
      .strictObject({
        /** the control socket (changes allowed, caller by SO_PEERCRED); default <stateDirectory>/control.sock; false: none */
        socket: z.union([z.string().min(1).refine((p) => p.startsWith('/'), { error: (i) => `${safeJson(i.input)} is not an absolute path` }), z.literal(false)]).optional(),
        /** the group whose members may use the socket (mode 0660); a name or a gid */
        group: z.string().min(1).max(64).default('portsnare'),
        /** the token that allows changes over TCP (mode 0600, created at start); default <stateDirectory>/control.token; false: none */
        tokenFile: z.union([z.string().min(1).refine((p) => p.startsWith('/'), { error: (i) => `${safeJson(i.input)} is not an absolute path` }), z.literal(false)]).optional(),
      })
      .default({ group: 'portsnare' }),
    limits: z
      .strictObject({
        /** decoy connections open at once; more are closed at accept (still counted as hits) */
        maxSockets: z.number().int().min(1).max(1_000_000).default(512),
        /** a decoy connection is closed after this long */
        socketTimeoutMs: z.number().int().min(10).max(600_000).default(5000),
        /** a decoy connection is closed after reading this many bytes */
        maxReadBytes: z.number().int().min(0).max(2 ** 20).default(4096),
        /** sources the aggregator tracks at once (least recently seen dropped first) */
        maxTrackedSources: z.number().int().min(16).max(10_000_000).default(100_000),
        /** UDP banner replies per second, all ports together */
        udpRepliesPerSecond: z.number().int().min(0).max(1_000_000).default(100),
      })
      .default({ maxSockets: 512, socketTimeoutMs: 5000, maxReadBytes: 4096, maxTrackedSources: 100_000, udpRepliesPerSecond: 100 }),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /** a digest of the local pipeline's blocks to a webhook every N minutes (core/digest.ts AgentDigestSchema); needs enforce.nftables */
    digest: AgentDigestSchema.optional(),
  })
  .superRefine((config, ctx) => {
    for (const key of ['tcpPorts', 'udpPorts'] as const) {
      if (config[key] === ALL_UNUSED && !config.stealth) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `"${ALL_UNUSED}" needs stealth: true (the kernel watches every unused port; root or CAP_NET_ADMIN)`,
          params: { hasValue: true },
        });
      }
    }
    for (const key of ['allowlist', 'protectedCidrs', 'blockableSpecialCidrs'] as const) {
      config.guard[key].forEach((value, index) => {
        const problem = cidrProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', path: ['guard', key, index], message: problem, params: { hasValue: true } });
      });
    }
    const empty = (list: PortList): boolean => list !== ALL_UNUSED && list.length === 0;
    if (empty(config.tcpPorts) && empty(config.udpPorts)) {
      ctx.addIssue({ code: 'custom', path: ['tcpPorts'], message: 'no TCP and no UDP ports: nothing to watch', params: { hasValue: true } });
    }
    if (config.health.enabled && config.health.port !== 0 && config.tcpPorts !== ALL_UNUSED && config.tcpPorts.includes(config.health.port)) {
      ctx.addIssue({
        code: 'custom',
        path: ['health', 'port'],
        message: `${config.health.port} is also a decoy TCP port (tcpPorts): pick another port for one of them`,
        params: { hasValue: true },
      });
    }
    if (config.redirectPort !== false && config.health.enabled && config.health.port === config.redirectPort) {
      ctx.addIssue({ code: 'custom', path: ['redirectPort'], message: `${config.redirectPort} is also the health port: pick another port for one of them`, params: { hasValue: true } });
    }
    if (config.redirectPort !== false && config.tcpPorts !== ALL_UNUSED && config.tcpPorts.includes(config.redirectPort)) {
      ctx.addIssue({ code: 'custom', path: ['redirectPort'], message: `${config.redirectPort} is also a decoy TCP port (tcpPorts): pick another port for one of them`, params: { hasValue: true } });
    }
    if (config.digest && !config.enforce.nftables.enabled) {
      ctx.addIssue({ code: 'custom', path: ['digest'], message: 'needs enforce.nftables.enabled: the digest reports the local pipeline\'s blocks', params: { hasValue: true } });
    }
    const q = config.enforce.nftables.quarantine;
    if (q.seconds > q.periodSeconds) {
      ctx.addIssue({ code: 'custom', path: ['enforce', 'nftables', 'quarantine', 'periodSeconds'], message: `${q.periodSeconds} is shorter than quarantine.seconds (${q.seconds})`, params: { hasValue: true } });
    }
    config.sinks.forEach((sink, index) => {
      if (sink.type === 'eventbridge' && !sink.region && !process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) {
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', index, 'region'],
          message: 'missing: set region here or AWS_REGION in the environment',
          params: { hasValue: true },
        });
      }
    });
  });

export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type AgentConfig = z.output<typeof AgentConfigSchema>;

/** The banner for a port (TCP or UDP), if any: a per-port entry wins over "*". */
export function bannerFor(config: Pick<AgentConfig, 'banner'>, port: number): string | undefined {
  const banner = config.banner;
  if (banner === undefined) return undefined;
  if (typeof banner === 'string') return banner;
  let fallback: string | undefined;
  for (const [key, text] of Object.entries(banner)) {
    if (key === '*') {
      fallback = text;
      continue;
    }
    const ports = parsePortList(key, false);
    if (ports.ok && ports.value !== ALL_UNUSED && ports.value.includes(port)) return text;
  }
  return fallback;
}

/** The spool directory in effect. */
export function spoolDirectory(config: AgentConfig): string {
  return config.spool.directory ?? `${config.stateDirectory.replace(/\/+$/, '')}/spool`;
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** `enforce.nftables.simulate` as core's simulation settings (core/policy.ts simulationOf). */
export function agentSimulation(config: AgentConfig): SimulationSettings {
  const simulate = config.enforce.nftables.simulate;
  if (simulate === true) return { all: true, inputs: [] };
  return { all: false, inputs: simulate === false ? [] : [...simulate.inputs] };
}

/**
 * Whether the kernel detector must block nobody: simulation of every block, or of the sensor's
 * (every block the kernel makes is one the sensor decided, reason `sensor`).
 */
export function kernelSimulated(config: AgentConfig): boolean {
  const simulation = agentSimulation(config);
  return simulation.all || simulation.inputs.includes('sensor');
}

/** `key.path: message (got "value")`, one issue per clause. */
export function formatConfigError(error: z.ZodError, input: unknown): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((key) => (path ? `${path}.${key}` : key));
        return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''}`;
      }
      const custom = issue.code === 'custom' && (issue as { params?: { hasValue?: boolean } }).params?.hasValue;
      const value = valueAt(input, issue.path);
      const shown = truncate(safeJson(value));
      const got = custom || value === undefined || issue.message.includes(shown) ? '' : ` (got ${shown})`;
      return `${path || '(config)'}: ${issue.message}${got}`;
    })
    .join('; ');
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Validates a parsed document; never throws. */
export function parseAgentConfig(input: unknown): { ok: true; value: AgentConfig } | { ok: false; error: string } {
  try {
    if (input === null || input === undefined) input = {};
    if (typeof input !== 'object' || Array.isArray(input)) return { ok: false, error: `(config): must be a mapping of keys to values (got ${truncate(safeJson(input))})` };
    const result = AgentConfigSchema.safeParse(input);
    return result.success ? { ok: true, value: result.data } : { ok: false, error: formatConfigError(result.error, input) };
  } catch (error) {
    return { ok: false, error: `(config): ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Parses JSON or YAML text (YAML unless `format` says json); never throws. */
export function parseConfigText(text: string, format: 'json' | 'yaml' = 'yaml'): { ok: true; value: AgentConfig } | { ok: false; error: string } {
  let document: unknown;
  try {
    document = format === 'json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, maxAliasCount: 100, logLevel: 'error' });
  } catch (error) {
    return { ok: false, error: `not valid ${format.toUpperCase()}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
  return parseAgentConfig(document);
}

/** Reads and validates a config file; throws ConfigError naming the file and the key at fault. */
export function loadConfigFile(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = parseConfigText(text, extname(path).toLowerCase() === '.json' ? 'json' : 'yaml');
  if (!parsed.ok) throw new ConfigError(`${path}: ${parsed.error}`);
  return parsed.value;
}

/** The control socket's path (control.socket, default <stateDirectory>/control.sock), or undefined when off. */
export function controlSocketPath(config: Pick<AgentConfig, 'control' | 'stateDirectory'>): string | undefined {
  const socket = config.control.socket;
  if (socket === false) return undefined;
  return socket ?? `${config.stateDirectory.replace(/\/+$/, '')}/control.sock`;
}

/** The TCP change token's file (control.tokenFile, default <stateDirectory>/control.token), or undefined when off. */
export function controlTokenPath(config: Pick<AgentConfig, 'control' | 'stateDirectory'>): string | undefined {
  const file = config.control.tokenFile;
  if (file === false) return undefined;
  return file ?? `${config.stateDirectory.replace(/\/+$/, '')}/control.token`;
}
