/**
 * `portsnare import-portsentry portsentry.conf`: the portsnare agent config equivalent to a
 * Portsentry 2.x or 1.2 configuration, with a warning for each key that has no equivalent.
 *
 * Portsentry reads `KEY="value"` lines (quotes optional, `#` comments) and takes the first
 * occurrence of a key. The mapping:
 *   TCP_PORTS / UDP_PORTS          → tcpPorts / udpPorts
 *   ADVANCED_PORTS_TCP/UDP (1.2)   → with --advanced: "all-unused" + stealth (every unused port,
 *                                    not only those below the number); else a warning
 *   ADVANCED_EXCLUDE_TCP/UDP (1.2) → excludePorts.tcp / .udp (with --advanced)
 *   IGNORE_FILE                    → ignore (the file's entries; unreadable: a warning)
 *   SCAN_TRIGGER=n                 → trigger.hits = n + 1 (Portsentry's 0 reacts at once)
 *   PORT_BANNER                    → banner
 *   BLOCK_TCP / BLOCK_UDP = 1      → enforce.nftables.enabled (BLOCK_UDP also allows blocking on
 *                                    unverified probes: policy.blockUnverified)
 *   KILL_ROUTE, KILL_HOSTS_DENY, KILL_RUN_CMD(_FIRST), HISTORY_FILE, BLOCKED_FILE, RESOLVE_HOST, …
 *                                  → warnings (no equivalent; what portsnare does instead)
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { canonicalTarget } from '../core/address';
import { ALL_UNUSED, parseAgentConfig, parsePortList } from './config';

export interface ImportOptions {
  /** map ADVANCED_PORTS_* to "all-unused" (needs stealth) */
  readonly advanced?: boolean;
  /** the file's name, for the header comment */
  readonly source?: string;
  /** reads the IGNORE_FILE (tests) */
  readonly readFile?: (path: string) => string;
}

export interface ImportResult {
  /** the config document (input form of the agent config) */
  readonly config: Record<string, unknown>;
  readonly yaml: string;
  readonly warnings: string[];
  /** the config validates as an agent config (else `error` says why) */
  readonly valid: boolean;
  readonly error?: string;
}

const NO_EQUIVALENT: Record<string, string> = {
  KILL_ROUTE: 'portsnare blocks in its own nftables table with a TTL (enforce.nftables), not through a command',
  KILL_HOSTS_DENY: 'TCP wrappers are not used; blocks go into nftables (enforce.nftables)',
  KILL_RUN_CMD: 'no external command is run; react to events from a sink instead (file, or an EventBridge rule)',
  KILL_RUN_CMD_FIRST: 'no external command is run',
  HISTORY_FILE: 'block history is kept in <stateDirectory>/blocks.json (portsnare blocks / GET /history)',
  BLOCKED_FILE: 'blocks are kept in <stateDirectory>/blocks.json and survive restarts',
  RESOLVE_HOST: 'portsnare never resolves attacker addresses (DNS lookups slow detection and leak to the attacker)',
  SYSLOG_FACILITY: 'the agent logs JSON lines to stderr (journald under systemd)',
  LOG_FILE: 'the agent logs JSON lines to stderr; events go to the sinks',
};

const KNOWN = new Set([
  'TCP_PORTS',
  'UDP_PORTS',
  'ADVANCED_PORTS_TCP',
  'ADVANCED_PORTS_UDP',
  'ADVANCED_EXCLUDE_TCP',
  'ADVANCED_EXCLUDE_UDP',
  'IGNORE_FILE',
  'SCAN_TRIGGER',
  'PORT_BANNER',
  'BLOCK_TCP',
  'BLOCK_UDP',
  ...Object.keys(NO_EQUIVALENT),
]);

/** KEY="value" lines → first value of each key, in order; duplicates and odd lines reported. */
export function parsePortsentryConf(text: string): { values: Map<string, string>; warnings: string[] } {
  const values = new Map<string, string>();
  const warnings: string[] = [];
  const lines = String(text).split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      warnings.push(`line ${index + 1}: not KEY="value", ignored: ${line.slice(0, 60)}`);
      return;
    }
    const key = match[1]!.toUpperCase();
    let value = match[2]!.trim();
    const quoted = /^"(.*)"\s*(#.*)?$/.exec(value);
    if (quoted) value = quoted[1]!;
    else value = value.replace(/\s+#.*$/, '').trim();
    if (values.has(key)) {
      warnings.push(`line ${index + 1}: ${key} set again; Portsentry uses the first value, so does this import`);
      return;
    }
    values.set(key, value);
  });
  return { values, warnings };
}

/** One IGNORE_FILE entry: an address, a CIDR, or Portsentry 1.2's address/netmask. */
export function ignoreEntry(text: string): string | undefined {
  const entry = text.trim();
  const target = canonicalTarget(entry, true);
  if (target) return target;
  const mask = /^([\d.]+)\/(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(entry);
  if (mask) {
    const octets = mask[2]!.split('.').map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    const bits = octets.map((o) => o.toString(2).padStart(8, '0')).join('');
    if (!/^1*0*$/.test(bits)) return undefined;
    return ignoreEntry(`${mask[1]}/${bits.indexOf('0') < 0 ? 32 : bits.indexOf('0')}`);
  }
  return undefined;
}

export function importPortsentry(text: string, options: ImportOptions = {}): ImportResult {
  const { values, warnings } = parsePortsentryConf(text);
  const config: Record<string, unknown> = {};
  const read = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));

  const ports = (key: string, target: string): void => {
    const value = values.get(key);
    if (value === undefined) return;
    const parsed = parsePortList(value, false);
    if (!parsed.ok) warnings.push(`${key}: ${parsed.error}; not imported`);
    else config[target] = value.replace(/\s+/g, '');
  };
  ports('TCP_PORTS', 'tcpPorts');
  ports('UDP_PORTS', 'udpPorts');
  if (!values.has('TCP_PORTS')) warnings.push("no TCP_PORTS: portsnare's default TCP list applies");
  if (!values.has('UDP_PORTS')) warnings.push("no UDP_PORTS: portsnare's default UDP list applies");

  // Portsentry 1.2's advanced mode (-atcp / -audp): every port below N that no service uses.
  const exclude: Record<string, string> = {};
  for (const [proto, portsKey] of [
    ['TCP', 'tcpPorts'],
    ['UDP', 'udpPorts'],
  ] as const) {
    const advanced = values.get(`ADVANCED_PORTS_${proto}`);
    const excluded = values.get(`ADVANCED_EXCLUDE_${proto}`);
    if (advanced === undefined) {
      if (excluded !== undefined) warnings.push(`ADVANCED_EXCLUDE_${proto} without ADVANCED_PORTS_${proto}: not imported`);
      continue;
    }
    if (!options.advanced) {
      warnings.push(`ADVANCED_PORTS_${proto}="${advanced}" (advanced mode) not imported: re-run with --advanced for ${portsKey}: all-unused (kernel detection, needs root or CAP_NET_ADMIN)`);
      continue;
    }
    config[portsKey] = ALL_UNUSED;
    config.stealth = true;
    warnings.push(`ADVANCED_PORTS_${proto}="${advanced}": portsnare's all-unused watches every unused port (1-65535), not only those below ${advanced}`);
    if (excluded !== undefined && excluded.trim() !== '') {
      const parsed = parsePortList(excluded, false);
      if (parsed.ok) exclude[proto.toLowerCase()] = excluded.replace(/\s+/g, '');
      else warnings.push(`ADVANCED_EXCLUDE_${proto}: ${parsed.error}; not imported`);
    }
  }
  if (Object.keys(exclude).length) config.excludePorts = exclude;

  const ignoreFile = values.get('IGNORE_FILE');
  if (ignoreFile !== undefined && ignoreFile !== '') {
    let content: string | undefined;
    try {
      content = read(ignoreFile);
    } catch (error) {
      warnings.push(`IGNORE_FILE ${ignoreFile}: cannot read it (${error instanceof Error ? error.message : String(error)}); add its entries to ignore by hand`);
    }
    if (content !== undefined) {
      const ignore: string[] = [];
      String(content)
        .split(/\r?\n/)
        .forEach((raw, index) => {
          const line = raw.replace(/#.*$/, '').trim();
          if (!line) return;
          const entry = ignoreEntry(line);
          if (entry === undefined) warnings.push(`IGNORE_FILE ${ignoreFile} line ${index + 1}: ${JSON.stringify(line.slice(0, 60))} is not an address or CIDR; skipped`);
          else if (!ignore.includes(entry)) ignore.push(entry);
        });
      if (ignore.length) config.ignore = ignore;
    }
  }

  const trigger = values.get('SCAN_TRIGGER');
  if (trigger !== undefined) {
    const n = /^\d{1,4}$/.test(trigger.trim()) ? Number(trigger) : NaN;
    if (!Number.isInteger(n) || n + 1 > 10_000) warnings.push(`SCAN_TRIGGER: ${JSON.stringify(trigger)} is not a number from 0 to 9999; not imported`);
    else {
      config.trigger = { hits: n + 1, windowSeconds: 60 };
      if (n > 0) warnings.push('SCAN_TRIGGER: Portsentry counts forever; portsnare counts within trigger.windowSeconds (60 s here)');
    }
  }

  const banner = values.get('PORT_BANNER');
  if (banner !== undefined && banner !== '') {
    if (banner.length > 4096) warnings.push('PORT_BANNER: longer than 4096 characters; not imported');
    else config.banner = banner;
  }

  const blockTcp = values.get('BLOCK_TCP')?.trim();
  const blockUdp = values.get('BLOCK_UDP')?.trim();
  for (const [key, value] of [
    ['BLOCK_TCP', blockTcp],
    ['BLOCK_UDP', blockUdp],
  ] as const) {
    if (value === undefined || value === '0' || value === '1') continue;
    if (value === '2') warnings.push(`${key}="2" (run KILL_RUN_CMD only) has no equivalent: no external command is run`);
    else warnings.push(`${key}: ${JSON.stringify(value)} is not 0, 1 or 2; not imported`);
  }
  if (blockTcp === '1' || blockUdp === '1') {
    const nftables: Record<string, unknown> = { enabled: true };
    if (blockUdp === '1') {
      nftables.policy = { blockUnverified: true };
      warnings.push('BLOCK_UDP="1": UDP and stealth probes can be forged; policy.blockUnverified is on, so a spoofed packet can get an address blocked');
    }
    if (blockTcp !== '1') warnings.push('BLOCK_UDP="1" without BLOCK_TCP: portsnare blocks on TCP probes as well');
    config.enforce = { nftables };
  }

  for (const [key, value] of values) {
    if (key in NO_EQUIVALENT && value !== '') warnings.push(`${key} has no equivalent: ${NO_EQUIVALENT[key]}`);
    else if (!KNOWN.has(key)) warnings.push(`${key} is not a Portsentry key portsnare knows: not imported`);
  }

  const validated = parseAgentConfig(config);
  if (!validated.ok) warnings.push(`the imported config does not validate yet: ${validated.error}`);
  const header = `# portsnare agent config, imported from ${options.source ?? 'portsentry.conf'} by portsnare import-portsentry\n# every key and its default: docs/agent-config.md\n`;
  return {
    config,
    yaml: header + (Object.keys(config).length ? stringify(config) : '{}\n'),
    warnings,
    valid: validated.ok,
    ...(validated.ok ? {} : { error: validated.error }),
  };
}
