/**
 * The local backend: the agent's control API when an agent answers on loopback, otherwise the
 * agent's file store directly (and its nftables table when the config enables enforcement and
 * this process may use nft), through the same LocalPipeline the agent runs — so the guard, the
 * policy and the history are the same whichever way a block arrives.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NeverBlockGuard } from '../../core/guard';
import { type BlockRecord, isActive } from '../../core/policy';
import { type AgentConfig, agentSimulation, ConfigError, DEFAULT_HEALTH_PORT, controlSocketPath, controlTokenPath, loadConfigFile, parseAgentConfig, spoolDirectory } from '../../sensor/config';
import { readControlToken } from '../../sensor/control-token';
import { NftEnforcer } from '../../sensor/local/nft';
import { LocalPipeline } from '../../sensor/local/pipeline';
import { FileStore } from '../../sensor/local/store';
import { RuntimeAllowlist, guardWith } from '../../sensor/allowlist';
import { AgentBackend, historyView, probeAgent, probeSocket, recordView } from './agent-client';
import type { Backend, BlockOutcome, BlockRequest, BlockView, HistoryView, StatusView, UnblockOutcome } from './backend';
import { byExpiry } from './backend';
import { CliError, EXIT } from './errors';

/** Where the agent's config is looked for when --config is not given. */
export const DEFAULT_CONFIG_PATHS = ['/etc/portsnare/agent.yaml', '/etc/portsnare/agent.yml', '/etc/portsnare/agent.json'];

export interface LocalOptions {
  readonly config?: string;
  readonly stateDir?: string;
  readonly agent?: string;
  readonly env: NodeJS.ProcessEnv;
  /** status, blocks, history: create nothing (a missing state directory reads as an empty store) */
  readonly readOnly?: boolean;
}

/** The agent config in effect for the command line: --config, PORTSNARE_CONFIG, /etc/portsnare/agent.yaml, or the defaults. */
export function localConfig(options: LocalOptions): { config: AgentConfig; path?: string } {
  const explicit = options.config ?? options.env['PORTSNARE_CONFIG'];
  const path = explicit ?? DEFAULT_CONFIG_PATHS.find((candidate) => existsSync(candidate));
  try {
    if (path) return { config: loadConfigFile(path), path };
  } catch (error) {
    throw new CliError(error instanceof ConfigError ? error.message : String(error), EXIT.usage);
  }
  const parsed = parseAgentConfig({});
  if (!parsed.ok) throw new CliError(`built-in agent defaults do not validate: ${parsed.error}`, EXIT.failure);
  return { config: parsed.value };
}

/** The running agent's control API URL: --agent, PORTSNARE_AGENT_URL, or health.host/port of the config. */
export function agentUrlOf(options: Pick<LocalOptions, 'agent' | 'env'>, config: AgentConfig): string {
  return options.agent ?? options.env['PORTSNARE_AGENT_URL'] ?? `http://${hostForUrl(config.health.host)}:${config.health.port || DEFAULT_HEALTH_PORT}`;
}

/** --agent / PORTSNARE_AGENT_URL: a socket (`unix:PATH` or an absolute path) or an http URL; anything else is a usage error. */
function explicitEndpoint(value: string): { socketPath: string } | { url: string } {
  if (value.startsWith('unix:')) return { socketPath: value.slice('unix:'.length) };
  if (value.startsWith('/')) return { socketPath: value };
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'http:' || url.hostname === '') throw new CliError(`--agent: ${JSON.stringify(value)} is not an http:// URL or a control socket (unix:/path)`, EXIT.usage);
  return { url: value };
}

/**
 * The agent that answers, by the way that may change state first: the control socket (root and
 * the group), else loopback TCP (reads; changes with the token when this user can read it).
 * Undefined when nothing answers; an explicit --agent that does not answer is an error.
 */
async function findAgent(options: LocalOptions, config: AgentConfig, configPath: string | undefined): Promise<AgentBackend | undefined> {
  const explicit = options.agent ?? options.env['PORTSNARE_AGENT_URL'];
  const tokenFile = controlTokenPath(config);
  const token = tokenFile !== undefined ? readControlToken(tokenFile) : undefined;
  if (explicit !== undefined) {
    const endpoint = explicitEndpoint(explicit);
    if ('socketPath' in endpoint) {
      const answer = await probeSocket(endpoint.socketPath);
      if (!('error' in answer)) return new AgentBackend(endpoint);
      if (answer.error === 'EACCES') throw new CliError(`not permitted: the control socket ${endpoint.socketPath} refused this user (EACCES): it is for root and group ${config.control.group}`, EXIT.permission);
      throw new CliError(`no agent answers at ${endpoint.socketPath} (${answer.error}; is \`portsnare agent\` running?)`, EXIT.unhealthy);
    }
    if (await probeAgent(endpoint.url)) return new AgentBackend({ url: endpoint.url, ...(token !== undefined ? { token } : {}) });
    throw new CliError(`no agent answers at ${endpoint.url} (is \`portsnare agent\` running? is the health port right?)`, EXIT.unhealthy);
  }
  let readOnlyWhy: string | undefined;
  const socket = controlSocketPath(config);
  if (socket !== undefined) {
    const answer = await probeSocket(socket);
    if (!('error' in answer)) return new AgentBackend({ socketPath: socket });
    if (answer.error === 'EACCES') readOnlyWhy = `the control socket ${socket} refused this user (EACCES): changes need root or group ${config.control.group}`;
  }
  const url = agentUrlOf(options, config);
  if (await probeAgent(url)) return new AgentBackend({ url, ...(token !== undefined ? { token } : {}) }, readOnlyWhy ?? (token === undefined ? `no control socket answers${socket ? ` at ${socket}` : ''}${configPath ? ` (control.socket of ${configPath})` : ''}` : undefined));
  // the agent runs (its socket exists) but is not ours to use, and TCP does not answer: say so, not "cannot read the store"
  if (readOnlyWhy) throw new CliError(`not permitted: ${readOnlyWhy}`, EXIT.permission);
  return undefined;
}

/** A command only a running agent can answer (detections, reload): its URL, or exit 6 saying nobody answers. */
export async function requireAgent(options: LocalOptions): Promise<AgentBackend> {
  const { config, path } = localConfig(options);
  const agent = await findAgent(options, config, path);
  if (agent) return agent;
  const url = agentUrlOf(options, config);
  throw new CliError(
    `no agent answers at ${controlSocketPath(config) ?? url} or ${url} (is \`portsnare agent\` running? ${path ? `control.socket and health.port of ${path}` : 'it may use another state directory or health.port: pass --config FILE or --agent URL'})`,
    EXIT.unhealthy,
  );
}

/** The agent when one answers, else the store. An explicit --agent that does not answer is an error. */
export async function openLocal(options: LocalOptions): Promise<Backend> {
  const { config, path } = localConfig(options);
  const url = agentUrlOf(options, config);
  const explicitAgent = options.agent !== undefined || options.env['PORTSNARE_AGENT_URL'] !== undefined;
  const stateDir = options.stateDir ?? options.env['PORTSNARE_STATE_DIR'];
  if (stateDir === undefined || explicitAgent) {
    const agent = await findAgent(options, config, path);
    if (agent) return agent;
  }
  const directory = stateDir ?? config.stateDirectory;
  return StoreBackend.open({ ...config, stateDirectory: directory }, { agentUrl: stateDir === undefined ? url : undefined, configPath: path, readOnly: options.readOnly === true });
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

type KernelTargets = { readonly targets: ReadonlySet<string>; readonly count: number } | { readonly error: string };

/** Blocks straight in the agent's file store, for when no agent runs. */
export class StoreBackend implements Backend {
  readonly where: string;

  private kernelReady = false;

  private constructor(
    private readonly config: AgentConfig,
    private readonly store: FileStore,
    private readonly pipeline: LocalPipeline,
    /** error lines the pipeline logged during this command (a failed nft call) */
    private readonly failures: string[],
    private readonly enforcer: NftEnforcer | undefined,
    private readonly enforcement: string,
    private readonly agentUrl: string | undefined,
    private readonly configPath: string | undefined,
  ) {
    // a plain `portsnare blocks` while the agent runs on another port must not read as "no blocks"
    this.where = `local store ${config.stateDirectory}${agentUrl ? `; no agent answers at ${agentUrl}` : ''}`;
  }

  static async open(config: AgentConfig, context: { agentUrl?: string | undefined; configPath?: string | undefined; readOnly?: boolean }): Promise<StoreBackend> {
    // read-only commands open the store read-only (no lock, no repair: a reader needs no write access);
    // a change waits for the writers' lock in the kernel (a command line has nothing else to do)
    const store = new FileStore(config.stateDirectory, context.readOnly ? { readOnly: true } : { blockingLock: true });
    try {
      // read-only commands create nothing: a missing directory is an empty store
      if (!context.readOnly || existsSync(config.stateDirectory)) await store.load();
    } catch (error) {
      throw new CliError(`cannot read the local store in ${config.stateDirectory}: ${error instanceof Error ? error.message : String(error)} (pass --state-dir DIR or --config FILE)`, EXIT.failure);
    }
    let enforcer: NftEnforcer | undefined;
    let enforcement: string;
    if (!config.enforce.nftables.enabled) {
      enforcement = 'log-only (enforce.nftables.enabled is false)';
    } else {
      const available = await NftEnforcer.available();
      if (available.ok) {
        enforcer = new NftEnforcer();
        enforcement = 'nftables (table inet portsnare)';
      } else {
        enforcement = `log-only here: ${available.why}`;
      }
    }
    const failures: string[] = [];
    const pipeline = new LocalPipeline({
      store,
      ...(enforcer ? { enforcer } : {}),
      policy: config.enforce.nftables.policy,
      simulation: agentSimulation(config),
      // the runtime allowlist (portsnare allow) protects as guard.allowlist does
      guard: new NeverBlockGuard(guardWith(config, runtimeAllowlist(config.stateDirectory))),
      logger: (line) => {
        const fields = line as { level?: unknown; msg?: unknown; error?: unknown };
        if (fields.level === 'error') failures.push(`${String(fields.msg)}: ${String(fields.error ?? '')}`);
      },
    });
    return new StoreBackend(config, store, pipeline, failures, enforcer, enforcement, context.agentUrl, context.configPath);
  }

  async status(now: number): Promise<StatusView> {
    const records = this.store.list();
    const active = records.filter((record) => isActive(record, now));
    const spool = await spoolDepth(spoolDirectory(this.config));
    const inKernel = await this.kernelTargets();
    const agentLine = this.agentUrl ? `not running (nothing answers on ${this.agentUrl})` : 'not asked (--state-dir given)';
    const lines: Array<[string, string]> = [
      ['agent', agentLine],
      ['config', this.configPath ?? 'built-in defaults (no --config, no /etc/portsnare/agent.yaml)'],
      ['state directory', this.config.stateDirectory],
      ['enforcement', inKernel === undefined ? this.enforcement : 'error' in inKernel ? `${this.enforcement}, kernel set unreadable: ${inKernel.error}` : `${this.enforcement}, ${inKernel.count} addresses in the kernel`],
      ['detections', 'unknown while the agent is not running'],
      ['active blocks', String(active.length)],
      ['records', `${records.length} (active and expired)`],
      ['spool depth', spool ? `${spool.events} events waiting, ${spool.bytes} bytes (${spool.directory})` : `no spool (${spoolDirectory(this.config)})`],
    ];
    return {
      where: this.where,
      // unhealthy when the agent was asked and did not answer; with --state-dir only the store was asked
      healthy: this.agentUrl === undefined,
      lines,
      data: {
        backend: 'store',
        agent: { running: false, ...(this.agentUrl ? { url: this.agentUrl } : {}) },
        config: this.configPath ?? null,
        stateDirectory: this.config.stateDirectory,
        enforcement: this.enforcement,
        kernelEntries: inKernel && 'targets' in inKernel ? inKernel.count : null,
        ...(inKernel && 'error' in inKernel ? { kernelError: inKernel.error } : {}),
        activeBlocks: active.length,
        records: records.length,
        spool: spool ?? { directory: spoolDirectory(this.config), events: 0, bytes: 0 },
      },
    };
  }

  async blocks(now: number): Promise<BlockView[]> {
    const inKernel = await this.kernelTargets();
    return this.store
      .active(now)
      .map((record) => this.view(record, inKernel))
      .sort(byExpiry);
  }

  /**
   * Before a change with no agent running: the table exists and holds every active block of the
   * store (what the agent does at start), so the change lands in a kernel that matches the store.
   */
  private async readyKernel(): Promise<void> {
    if (!this.enforcer || this.kernelReady) return;
    try {
      await this.pipeline.restore();
    } catch (error) {
      throw new CliError(`cannot set up nftables (table inet portsnare): ${error instanceof Error ? error.message : String(error)}`, EXIT.failure);
    }
    this.kernelReady = true;
  }

  private checkKernel(what: string): void {
    if (this.failures.length > 0) {
      throw new CliError(`${what} is recorded in ${this.config.stateDirectory}, but nftables failed: ${this.failures.join('; ')}`, EXIT.failure);
    }
  }

  async block(request: BlockRequest): Promise<BlockOutcome> {
    await this.readyKernel();
    // The local pipeline's `reason` is the block reason (manual, sensor, …); the operator's text
    // travels with the requester into the record's note.
    const decision = await this.pipeline.block(request.target, {
      ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
      requestedBy: request.reason !== undefined ? `${request.requestedBy}: ${request.reason}` : request.requestedBy,
      ...(request.replace === true ? { replace: true } : {}),
    });
    if (decision.action === 'refused') {
      throw new CliError(decision.why.startsWith('refused') ? decision.why : `refused: ${request.target} — ${decision.why}`, EXIT.refused);
    }
    const record = decision.action === 'ignore' ? this.store.get(request.target) : decision.record;
    if (!record) throw new CliError(`block of ${request.target} not recorded: ${decision.why}`, EXIT.failure);
    this.checkKernel(`the block of ${request.target}`);
    const inKernel = await this.kernelTargets();
    return { kind: 'applied', block: this.view(record, inKernel) };
  }

  async unblock(target: string, requestedBy: string): Promise<UnblockOutcome> {
    const lifted = await this.pipeline.unblock(target, requestedBy);
    if (!lifted) throw new CliError(`${target} is not blocked in ${this.where}`, EXIT.notFound);
    this.checkKernel(`the unblock of ${target}`);
    return { kind: 'lifted', target };
  }

  async history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }> {
    const current = this.store.get(target);
    const entries = this.store.history(target).map((entry) => historyView(entry.at, entry.action, entry.record));
    // where it is enforced, as `blocks` says it (an inactive record is enforced nowhere)
    const places = current && isActive(current, Date.now()) ? this.placement(current.target, await this.kernelTargets()) : [];
    return { ...(current ? { current: recordView(current, undefined, places) } : {}), entries };
  }

  /** What the kernel set holds; a failed `nft list` is reported (placement "unknown: …"), never read as empty. */
  private async kernelTargets(): Promise<KernelTargets | undefined> {
    if (!this.enforcer) return undefined;
    try {
      const entries = await this.enforcer.list();
      return { targets: new Set(entries.map((entry) => entry.target)), count: entries.length };
    } catch (error) {
      return { error: `nft list failed: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /** A record as a view; one in simulation (enforce.nftables.simulate) is marked, and in the kernel only if the detector put it there. */
  private view(record: BlockRecord, inKernel: KernelTargets | undefined): BlockView {
    if (!(record.active && this.pipeline.simulated(record))) return recordView(record, undefined, this.placement(record.target, inKernel));
    const places = inKernel && 'error' in inKernel ? [`unknown: ${inKernel.error}`] : inKernel?.targets.has(record.target) ? ['nftables'] : [];
    return { ...recordView(record, undefined, places), simulated: true };
  }

  private placement(target: string, inKernel: KernelTargets | undefined): string[] {
    if (inKernel && 'error' in inKernel) return [`unknown: ${inKernel.error}`];
    if (inKernel?.targets.has(target)) return ['nftables'];
    return [this.enforcer ? 'store only (not in the kernel set: start the agent to restore it)' : 'store only (log-only)'];
  }
}

/**
 * Events waiting in the agent's spool (sensor/publish/spool.ts layout: numbered `.jsonl`
 * segments and `cursor.json`, everything before the cursor delivered), read without opening the
 * spool for writing. Undefined when there is no spool.
 */
export async function spoolDepth(directory: string): Promise<{ directory: string; events: number; bytes: number } | undefined> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return undefined;
  }
  const segments = names
    .map((name) => /^(\d{12})\.jsonl$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
  let cursor = { segment: segments[0] ?? 0, offset: 0 };
  try {
    const raw = JSON.parse(await readFile(join(directory, 'cursor.json'), 'utf8')) as { segment?: unknown; offset?: unknown };
    if (typeof raw.segment === 'number' && typeof raw.offset === 'number') cursor = { segment: raw.segment, offset: raw.offset };
  } catch {
    // no cursor yet: everything in the segments waits
  }
  let events = 0;
  let bytes = 0;
  for (const segment of segments) {
    if (segment < cursor.segment) continue;
    let text: Buffer;
    try {
      text = await readFile(join(directory, `${String(segment).padStart(12, '0')}.jsonl`));
    } catch {
      continue; // delivered and removed while we looked
    }
    const rest = segment === cursor.segment ? text.subarray(Math.min(cursor.offset, text.length)) : text;
    bytes += rest.length;
    for (const byte of rest) if (byte === 0x0a) events++;
  }
  return { directory, events, bytes };
}

/** The runtime allowlist of a state directory; a corrupt file is an error naming it. */
function runtimeAllowlist(directory: string): ReturnType<RuntimeAllowlist['list']> {
  try {
    return new RuntimeAllowlist(directory).list();
  } catch (error) {
    throw new CliError(`cannot read the runtime allowlist: ${error instanceof Error ? error.message : String(error)}`, EXIT.failure);
  }
}
