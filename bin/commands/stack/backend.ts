/**
 * The `--stack NAME` backend: a deployed EnumerationBlocker, found through CloudFormation.
 *
 * Reads go to the stack's DynamoDB table through the pipeline's own repository
 * (aws/repository.ts) and the key builders of core/table.ts; the settings come from the
 * stack's `PortsnareSettings` output (settings.ts); where a block is in force is read from WAF
 * and the NACLs (placements.ts). Changes never touch the table or WAF/NACL: they go as
 * `portsnare.cli` events ("Block Requested" / "Unblock Requested") on the stack's bus, so the
 * decide function validates them and the enforce function stays the one writer.
 */
import type { Stack } from '@aws-sdk/client-cloudformation';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { listOutput, STACK_OUTPUTS } from '../../../core/outputs';
import { DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED } from '../../../core/commands';
import { EVENT_SOURCE_CLI } from '../../../core/event';
import type { FindingsTarget } from '../../../core/findings';
import { NeverBlockGuard } from '../../../core/guard';
import { type BlockRecord, minuteOf, simulationOf } from '../../../core/policy';
import type { PipelineSettings } from '../../../core/settings';
import { BlockRepository, MAX_CHANGES_SPAN_MS } from '../../../aws/repository';
import type { Backend, BlockOutcome, BlockRequest, BlockView, HistoryView, StatusView, UnblockOutcome } from '../backend';
import { byExpiry } from '../backend';
import { CliError, EXIT } from '../errors';
import { isoSeconds } from '../output';
import { regionOf, send } from './aws-errors';
import { type CloudClients, closeClients } from './clients';
import { describeStack, stackStatusHealthy } from './describe';
import { type IpSetRef, parseIpSetArn, readPlacements } from './placements';
import { readSensors, sensorLines, sensorsJson, sensorsOfStack } from './sensors';
import { settingsOfStack, stackOutput } from './settings';
import { readBurstCount, readHistory } from './table-reads';
import { historyEntry, toView } from './views';
import { readWafEffect, type WafRuleEffect } from './waf-effect';

export class StackBackend implements Backend {
  readonly where: string;
  private readonly repository: BlockRepository;
  private loadedSettings: PipelineSettings | undefined;
  private effect: { now: number; effects: Promise<readonly WafRuleEffect[]> } | undefined;
  /** CloudWatch clients of other Regions this backend used (closed with it) */
  private readonly metricClients = new Set<CloudWatchClient>();

  private constructor(
    private readonly clients: CloudClients,
    readonly stackName: string,
    readonly region: string,
    private readonly stack: Stack,
    readonly tableName: string,
    readonly busName: string,
    private readonly waitSeconds: number,
    private readonly now: () => number,
  ) {
    this.where = `stack ${stackName} (${region})`;
    this.repository = new BlockRepository(clients.dynamo, tableName);
  }

  /** Finds the stack and its outputs; an unknown stack or a stack without them is an error. */
  static async open(clients: CloudClients, stackName: string, options: { waitSeconds?: number; now?: () => number } = {}): Promise<StackBackend> {
    const region = await regionOf(clients.cloudFormation);
    const stack = await describeStack(clients, stackName, region);
    const tableName = stackOutput(stack, STACK_OUTPUTS.table);
    const busName = stackOutput(stack, STACK_OUTPUTS.bus);
    if (!tableName || !busName) {
      const missing = [tableName ? undefined : STACK_OUTPUTS.table, busName ? undefined : STACK_OUTPUTS.bus].filter(Boolean).join(' and ');
      throw new CliError(`stack ${stackName} in ${region} has no ${missing} output: is it a portsnare stack (EnumerationBlocker)?`, EXIT.notFound);
    }
    return new StackBackend(clients, stackName, region, stack, tableName, busName, options.waitSeconds ?? 0, options.now ?? Date.now);
  }

  close(): Promise<void> {
    for (const client of this.metricClients) if (client !== this.clients.cloudWatch) client.destroy();
    closeClients(this.clients);
    return Promise.resolve();
  }

  async status(now: number): Promise<StatusView> {
    const settings = this.settings();
    const active = await this.activeRecords(now);
    const blocksThisMinute = await send(`read the burst counter in table ${this.tableName}`, () => readBurstCount(this.clients.dynamo, this.tableName, minuteOf(now)));
    const limit = settings.policy.burstLimitPerMinute;
    const breakerOpen = blocksThisMinute >= limit;
    const stackStatus = this.stack.StackStatus ?? 'UNKNOWN';
    const listed = sensorsOfStack(this.stack, this.stackName);
    const sensors = listed && (await readSensors(this.clients.cloudWatch, listed, now));
    const sensorsHealthy = (sensors ?? []).every((sensor) => sensor.healthy);
    const healthy = stackStatusHealthy(stackStatus) && !breakerOpen && sensorsHealthy;
    const lastBlock = active.reduce((latest, block) => Math.max(latest, block.blockedAt), 0);
    const outputs = Object.fromEntries((this.stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
    return {
      where: this.where,
      healthy,
      lines: [
        ['stack', `${this.stackName} ${stackStatus} (${this.region})`],
        ['table', this.tableName],
        ['event bus', this.busName],
        ['active blocks', String(active.length)],
        ['last block', lastBlock > 0 ? isoSeconds(lastBlock) : 'none active'],
        [
          'circuit breaker',
          breakerOpen
            ? `OPEN: ${blocksThisMinute} new blocks this minute, limit ${limit} — new blocks are refused until the minute drains (README: "When the circuit breaker opens")`
            : `closed: ${blocksThisMinute} of ${limit} new blocks this minute`,
        ],
        ...sensorLines(sensors, now),
        ['never-block guard', this.guardSource],
        ['detections', 'CloudWatch metric Portsnare/Detections (the stack dashboard)'],
      ],
      data: {
        backend: 'stack',
        stack: this.stackName,
        region: this.region,
        stackStatus,
        healthy,
        table: this.tableName,
        eventBus: this.busName,
        activeBlocks: active.length,
        blocksThisMinute,
        burstLimitPerMinute: limit,
        circuitBreakerOpen: breakerOpen,
        lastBlockAt: lastBlock > 0 ? new Date(lastBlock).toISOString() : null,
        guardSource: this.guardSource,
        sensors: sensorsJson(sensors, now),
        ...(sensors === undefined ? { sensorsNote: `the stack has no ${STACK_OUTPUTS.sensors} output (deployed by an older portsnare)` } : {}),
        outputs,
      },
    };
  }

  async blocks(now: number): Promise<BlockView[]> {
    return this.withEffects(await this.withPlacements((await this.activeRecords(now)).sort(byExpiry)), now);
  }

  /** Each active view in a WAF set gets that set's rule and what it blocked in the last hour. */
  private async withEffects(views: BlockView[], now: number): Promise<BlockView[]> {
    if (!views.some((view) => view.active)) return views;
    const effects = await this.wafEffect(now);
    if (effects.length === 0) return views;
    return views.map((view) => {
      // the sets that hold it, as withPlacements found them ("waf:NAME")
      const rules = view.active ? effects.filter((effect) => view.enforcedIn.includes(`waf:${effect.ipSet}`)) : [];
      return rules.length > 0 ? { ...view, wafRules: rules } : view;
    });
  }

  /** What each portsnare WAF rule blocked over the hour before `now` (read once per `now`). */
  wafEffect(now: number): Promise<readonly WafRuleEffect[]> {
    if (this.effect?.now !== now) {
      const metrics = (region: string): CloudWatchClient => {
        const client = this.clients.metrics?.(region) ?? (region === this.region ? this.clients.cloudWatch : undefined);
        // reported per rule as unavailable (readWafEffect catches it), never a failed listing
        if (!client) throw new Error(`no CloudWatch client for ${region}`);
        this.metricClients.add(client);
        return client;
      };
      // simulation of the whole deployment: the rules count (lib/WafBlocklist.ts), so their CountedRequests
      const metric = this.settings().simulation.all ? 'CountedRequests' : 'BlockedRequests';
      this.effect = { now, effects: readWafEffect(metrics, this.ipSetRefs(), now, metric) };
    }
    return this.effect.effects;
  }

  async findingRecords(now: number, since?: number): Promise<{ target: FindingsTarget; items: Array<{ record: BlockRecord; changedAt: number }> }> {
    // arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>: the account the findings function imports into
    const [, partition, , region, account] = (this.stack.StackId ?? '').split(':');
    if (!partition || !region || !account) throw new CliError(`stack ${this.stackName}: no account in its StackId ${JSON.stringify(this.stack.StackId)}`, EXIT.failure);
    // the findings function's ids are scoped by the table's name (lambda/findings/handler.ts)
    const target: FindingsTarget = { partition, region, account, scope: this.tableName };
    if (since === undefined) {
      const active = await send(`list the active blocks in table ${this.tableName}`, () => this.repository.listActive());
      return { target, items: active.map(({ record }) => ({ record, changedAt: Math.max(record.lastSeen, record.blockedAt) })) };
    }
    if (now - since > MAX_CHANGES_SPAN_MS) throw new CliError(`--since reaches back ${Math.round((now - since) / 1000)}s: the change log is read a day at most`, EXIT.usage);
    const changes = await send(`read the change log of table ${this.tableName}`, () => this.repository.changesSince(since, now));
    const items: Array<{ record: BlockRecord; changedAt: number }> = [];
    for (const change of changes) {
      const stored = await this.read(change.target);
      if (stored) items.push({ record: stored, changedAt: change.changedAt });
    }
    return { target, items };
  }

  async block(request: BlockRequest): Promise<BlockOutcome> {
    const verdict = this.guard().check(request.target);
    if (!verdict.blockable) {
      throw new CliError(`refused: ${request.target} is protected by ${verdict.rule} (never-block guard from ${this.guardSource}); nothing was sent`, EXIT.refused);
    }
    const detail = {
      version: 1,
      target: request.target,
      ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      requestedBy: request.requestedBy,
      ...(request.replace === true ? { replace: true } : {}),
    };
    const eventId = await this.put(DETAIL_TYPE_BLOCK_REQUESTED, detail);
    if (this.waitSeconds > 0) {
      const waited = await this.waitFor(request.target, (current) => current !== undefined && current.active && current.expiresAt > this.now());
      if (!waited?.record) {
        throw new CliError(
          `block of ${request.target} requested (event ${eventId}) but not in the table after ${this.waitSeconds}s: see the decide function's logs (Refused metric) and the DLQs`,
          EXIT.failure,
        );
      }
      const view = toView(waited.record);
      const [block] = await this.withPlacements([view]);
      return { kind: 'applied', block: block ?? view };
    }
    return { kind: 'requested', eventId, bus: this.busName };
  }

  async unblock(target: string, requestedBy: string): Promise<UnblockOutcome> {
    const current = await this.read(target);
    if (!current || !current.active || current.expiresAt <= this.now()) {
      throw new CliError(`${target} is not blocked in ${this.where}: no active block record`, EXIT.notFound);
    }
    const eventId = await this.put(DETAIL_TYPE_UNBLOCK_REQUESTED, { version: 1, target, requestedBy });
    if (this.waitSeconds > 0) {
      const lifted = await this.waitFor(target, (record) => !record || !record.active);
      if (!lifted) {
        throw new CliError(`unblock of ${target} requested (event ${eventId}) but still active after ${this.waitSeconds}s: see the decide function's logs`, EXIT.failure);
      }
      return { kind: 'lifted', target };
    }
    return { kind: 'requested', eventId, bus: this.busName };
  }

  async history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }> {
    const items = await send(`read the history of ${target} in table ${this.tableName}`, () => readHistory(this.clients.dynamo, this.tableName, target));
    const state = await this.read(target);
    const current = state ? (await this.withEffects(await this.withPlacements([toView(state)]), this.now()))[0] : undefined;
    return { ...(current ? { current } : {}), entries: items.map(historyEntry) };
  }

  /** The guard the decide function applies, from the stack's settings output. */
  guard(): NeverBlockGuard {
    return new NeverBlockGuard(this.settings().guard);
  }

  private get guardSource(): string {
    return `stack ${this.stackName} settings`;
  }

  /** Parsed on first use, so commands that need none (unblock) work on any portsnare stack. */
  private settings(): PipelineSettings {
    this.loadedSettings ??= settingsOfStack(this.stack, this.stackName);
    return this.loadedSettings;
  }

  private async withPlacements(views: BlockView[]): Promise<BlockView[]> {
    if (!views.some((view) => view.active)) return views;
    const ipSets = this.ipSetRefs();
    const { byTarget, unknown } = await readPlacements(this.clients, { ipSets, nacl: this.settings().nacl, tableName: this.tableName });
    return views.map((view) => {
      if (!view.active) return view;
      const places = [...(byTarget.get(view.target) ?? []), ...unknown.map((what) => `unknown: ${what}`)];
      // a simulated block of an input is in no set and no ACL by design: not pending
      return { ...view, enforcedIn: places.length > 0 || view.simulated ? places : ['pending (not in WAF or the NACLs yet)'] };
    });
  }

  private ipSetRefs(): IpSetRef[] {
    return listOutput(stackOutput(this.stack, STACK_OUTPUTS.ipSets))
      .map(parseIpSetArn)
      .filter((ref): ref is IpSetRef => ref !== undefined);
  }

  private async put(detailType: string, detail: Record<string, unknown>): Promise<string> {
    const answer = await send(`put ${detailType} on ${this.busName}`, () =>
      this.clients.events.send(
        new PutEventsCommand({
          Entries: [{ Source: EVENT_SOURCE_CLI, DetailType: detailType, Detail: JSON.stringify(detail), EventBusName: this.busName }],
        }),
      ),
    );
    const entry = answer.Entries?.[0];
    if ((answer.FailedEntryCount ?? 0) > 0 || !entry?.EventId) {
      throw new CliError(`EventBridge refused the ${detailType} event: ${entry?.ErrorCode ?? 'no event id'} ${entry?.ErrorMessage ?? ''}`.trim(), EXIT.failure);
    }
    return entry.EventId;
  }

  /** Polls the record until `done` holds (the record then, if any) or --wait runs out (undefined). */
  private async waitFor(target: string, done: (record: BlockRecord | undefined) => boolean): Promise<{ record: BlockRecord | undefined } | undefined> {
    const deadline = Date.now() + this.waitSeconds * 1000;
    for (;;) {
      const record = await this.read(target);
      if (done(record)) return { record };
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, Math.max(20, deadline - Date.now()))));
    }
  }

  private async read(target: string): Promise<BlockRecord | undefined> {
    return (await send(`read ${target} in table ${this.tableName}`, () => this.repository.get(target)))?.record;
  }

  private async activeRecords(now: number): Promise<BlockView[]> {
    const stored = await send(`list active blocks in table ${this.tableName}`, () => this.repository.listActive());
    // a block in simulation (the stack's settings, core/policy.ts simulationOf) is marked as such
    const simulation = this.settings().simulation;
    return stored
      .map(({ record }) => (simulationOf(record, simulation) !== undefined ? { ...toView(record), simulated: true } : toView(record)))
      .filter((view) => view.active && view.expiresAt > now);
  }
}
