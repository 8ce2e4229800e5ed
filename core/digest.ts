/**
 * Notification digests (issue 21, item 2): what a digest holds, when one is sent and how it is
 * written, for every channel alike. Pure: the digest function (lambda/digest/handler.ts) reads the
 * table and CloudWatch, claims the window and delivers; this module decides and renders.
 *
 * - A digest covers a window [from, until) of the decision table's history entries (core/table.ts
 *   `HIST#<iso time>#<action>`: `block`, `refresh`, `expire`, `unblock`) and of the failure metrics
 *   the functions publish (core/metrics.ts): new blocks, top sources and ports, escalations
 *   (offences > 1), lifts, breaker trips, enforcement failures, dead letters.
 * - It is sent only when it has at least `minNewBlocks` new blocks, or any breaker trip, failure
 *   or dead letter; never inside `quietHours` (wall clock of `timeZone`). A window that is not sent
 *   stays open: the next digest sent covers everything since the last one sent (`windowStart`).
 * - Bounded whatever the window holds: the lists are the top `top` entries, the text is cut to
 *   MAX_TEXT_BYTES, the SNS message stays under SNS's 256 KB and the Subject under 100 characters
 *   (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
 * - The window claim's item lives in the decision table under DIGEST_STATE_KEY (no block
 *   partition, no `activeKey`: never desired state, never on the `active` index).
 */
import { z } from 'zod';
import { FAILURE_METRICS, type MetricName } from './metrics';

// --- settings (the `portsnare.digest` context section, and the function's DIGEST_SETTINGS) -----------

/** an SNS topic ARN (https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html: names of 1–256 letters, digits, hyphens, underscores; FIFO topics end in .fifo) */
const SNS_TOPIC_ARN = /^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const QUIET_HOURS = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/;

/** whether `zone` is an IANA time zone this runtime knows (Intl throws a RangeError otherwise) */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** A webhook URL: https, with a host, and no user name or password in it (they would sit in the template). */
export function webhookUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:') return `must be https (got ${url.protocol.replace(/:$/, '')})`;
  if (url.username || url.password) return 'must not carry a user name or password: it would be stored in the template and the function\'s environment';
  return undefined;
}

/** The fields the stack's digest and the host agent's digest share, each validated the same way. */
const webhookUrlField = z.string().superRefine((value, ctx) => {
  const problem = webhookUrlProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const commonFields = {
  /** one digest at most every N minutes (the schedule's rate) */
  everyMinutes: z.number().int().min(5).max(1440).default(60),
  /** a digest is sent only with at least this many new blocks (or any breaker trip, failure or dead letter); 0: every window */
  minNewBlocks: z.number().int().min(0).max(1_000_000).default(1),
  /** "HH:MM-HH:MM" of `timeZone`: nothing is sent inside (an end before the start crosses midnight) */
  quietHours: z.string().regex(QUIET_HOURS, 'must be "HH:MM-HH:MM" (24-hour clock), e.g. "22:00-07:00"').optional(),
  /** the IANA time zone of quietHours */
  timeZone: z
    .string()
    .refine(isTimeZone, { message: 'is not an IANA time zone (e.g. "Europe/Berlin", "America/New_York", "UTC")' })
    .default('UTC'),
  /** how many sources, ports, escalations and lifts each list shows */
  top: z.number().int().min(1).max(50).default(10),
};

/** Quiet hours that start and end at the same minute would never let a digest out. */
function refuseEmptyDay(quietHours: string | undefined, ctx: z.RefinementCtx): void {
  if (quietHours && quietHours.split('-')[0] === quietHours.split('-')[1]) {
    ctx.addIssue({ code: 'custom', path: ['quietHours'], message: 'starts and ends at the same minute: nothing would ever be sent (leave quietHours out for none)' });
  }
}

export const DigestSettingsSchema = z
  .strictObject({
    ...commonFields,
    /** an existing SNS topic to publish to (email, AWS Chatbot/Slack subscribe to it); unset: the stack creates one (unless only webhookUrl is set) */
    topicArn: z.string().regex(SNS_TOPIC_ARN, 'must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)').optional(),
    /** an address the stack's own digest topic sends to (an email subscription); not with topicArn */
    email: z.email().optional(),
    /** a JSON POST of each digest to this https URL */
    webhookUrl: webhookUrlField.optional(),
    /** the SNS message also carries the AWS Chatbot custom-notification JSON (https subscriptions get it; email gets the text) */
    chatbot: z.boolean().default(false),
  })
  .superRefine((value, ctx) => {
    refuseEmptyDay(value.quietHours, ctx);
    if (value.email && value.topicArn) {
      ctx.addIssue({ code: 'custom', path: ['email'], message: 'subscribes the stack\'s own digest topic; with topicArn, subscribe the address to that topic instead' });
    }
    if (value.chatbot && !hasSnsChannel(value)) {
      ctx.addIssue({ code: 'custom', path: ['chatbot'], message: 'AWS Chatbot reads an SNS topic: set topicArn or email, or leave webhookUrl out so the stack creates a topic' });
    }
  });
export type DigestSettings = z.output<typeof DigestSettingsSchema>;

/** Whether digests go to SNS: an existing topic, or one the stack creates (always, unless the webhook is the only channel). */
export function hasSnsChannel(settings: Pick<DigestSettings, 'topicArn' | 'email' | 'webhookUrl'>): boolean {
  return settings.topicArn !== undefined || settings.email !== undefined || settings.webhookUrl === undefined;
}

/**
 * What lib gives the digest function (DIGEST_SETTINGS, lib/Digest.ts): the settings with the topic
 * resolved, the deployment's label and the names of the dead-letter queues it reports (AWS/SQS
 * ApproximateNumberOfMessagesVisible).
 */
export const DigestRuntimeSchema = z.strictObject({
  everyMinutes: z.number().int().min(5).max(1440),
  topicArn: z.string().min(1).optional(),
  webhookUrl: z.string().min(1).optional(),
  minNewBlocks: z.number().int().min(0),
  quietHours: z.string().regex(QUIET_HOURS).optional(),
  timeZone: z.string().refine(isTimeZone),
  chatbot: z.boolean(),
  top: z.number().int().min(1).max(50),
  /** what the digest calls this deployment (the stack name) */
  label: z.string().min(1).max(60),
  deadLetterQueues: z.array(z.string().min(1)).max(10),
});
export type DigestRuntime = z.output<typeof DigestRuntimeSchema>;
export const DIGEST_SETTINGS_ENV = 'DIGEST_SETTINGS';

// --- quiet hours --------------------------------------------------------------------------------------

/** Minutes since local midnight at `at` (epoch ms) on the wall clock of `timeZone`. */
export function localMinuteOfDay(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(at));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  return hour * 60 + minute;
}

/**
 * Whether `at` is inside `quietHours` ("HH:MM-HH:MM", start included, end excluded) on the wall
 * clock of `timeZone`. An end before the start crosses midnight. The wall clock is the zone's at
 * that instant, so a DST change moves the quiet hours with the clock, as people expect.
 */
export function isQuiet(at: number, quietHours: string | undefined, timeZone: string): boolean {
  if (!quietHours) return false;
  const match = QUIET_HOURS.exec(quietHours);
  if (!match) return false;
  const start = Number(match[1]) * 60 + Number(match[2]);
  const end = Number(match[3]) * 60 + Number(match[4]);
  const now = localMinuteOfDay(at, timeZone);
  return start < end ? now >= start && now < end : now >= start || now < end;
}

// --- the window ---------------------------------------------------------------------------------------

/** the claim item in the decision table (no block partition: core/table.ts isBlockRecordItem is false) */
export const DIGEST_STATE_KEY = { pk: 'DIGEST', sk: 'WINDOW' } as const;
export const DIGEST_CHANNELS = ['sns', 'webhook'] as const;
export type DigestChannel = (typeof DIGEST_CHANNELS)[number];
/** the attribute holding the end (epoch ms) of the last window delivered to a channel */
export function sentAttribute(channel: DigestChannel): string {
  return `sent_${channel}`;
}
export const CLAIM_ATTRIBUTES = { id: 'claimId', until: 'claimUntil', expires: 'claimExpires' } as const;

/**
 * The farthest back a digest reaches: CloudWatch keeps 1-minute data points 15 days
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Metric),
 * and the history lives 90 days; a digest held back longer (a threshold never met) starts here.
 */
export const MAX_WINDOW_MS = 14 * 86_400_000;

/** Where the window ending at `until` starts: the end of the last one sent, else one period back; never more than MAX_WINDOW_MS back. */
export function windowStart(sentUntil: number | undefined, until: number, everyMinutes: number): number {
  const from = sentUntil ?? until - everyMinutes * 60_000;
  return Math.max(from, until - MAX_WINDOW_MS);
}

// --- the content --------------------------------------------------------------------------------------

/** One history entry of the window, as the digest reads it. */
export interface DigestEntry {
  /** epoch ms */
  readonly at: number;
  /** the history action: block, refresh, expire, unblock */
  readonly action: string;
  readonly target: string;
  readonly hitCount: number;
  readonly offences: number;
  readonly reason?: string;
  /** the record's last distinct decoy ports (core/policy.ts MAX_REMEMBERED_PORTS) */
  readonly ports?: readonly number[];
  readonly liftedBy?: string;
}

/** One metric's data points of the window (epoch ms, values). */
export interface DigestMetricPoints {
  readonly name: MetricName;
  readonly points: ReadonlyArray<{ readonly at: number; readonly value: number }>;
}

export interface DeadLetterPoints {
  readonly queue: string;
  readonly points: ReadonlyArray<{ readonly at: number; readonly value: number }>;
}

/** the metrics a digest counts: breaker trips and every failure class */
export const DIGEST_METRICS: readonly MetricName[] = ['CircuitBreakerOpen', ...(Object.keys(FAILURE_METRICS) as MetricName[])];

export interface Ranked {
  readonly key: string;
  readonly count: number;
}

export interface Digest {
  readonly from: number;
  readonly until: number;
  readonly newBlocks: number;
  /** distinct sources newly blocked */
  readonly sources: number;
  /** the top sources of the window by hits (the record's count, at its latest entry in the window) */
  readonly topSources: readonly Ranked[];
  /** the top decoy ports by how many sources probed them */
  readonly topPorts: readonly Ranked[];
  /** blocks of a repeat offender (offences > 1): count and the top ones by offences */
  readonly escalations: number;
  readonly topEscalations: readonly Ranked[];
  readonly lifts: number;
  readonly earlyLifts: number;
  readonly breakerTrips: number;
  /** failure metric → count in the window (only non-zero ones) */
  readonly failures: Readonly<Record<string, number>>;
  /** queue name → most messages seen waiting in the window (only non-zero ones) */
  readonly deadLetters: Readonly<Record<string, number>>;
}

function rank(counts: Map<string, number>, top: number): Ranked[] {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, top)
    .map(([key, count]) => ({ key, count }));
}

/**
 * Folds one window's entries into a digest, one entry at a time, so a window of any size holds
 * only its per-source and per-port counts in memory. Entries outside [from, until) are skipped.
 */
export class DigestAccumulator {
  private newBlocks = 0;
  private escalations = 0;
  private lifts = 0;
  private earlyLifts = 0;
  private readonly blocked = new Set<string>();
  private readonly hits = new Map<string, { at: number; hits: number }>();
  private readonly portSources = new Map<number, Set<string>>();
  private readonly offences = new Map<string, number>();
  private breakerTrips = 0;
  private readonly failures = new Map<string, number>();
  private readonly deadLetters = new Map<string, number>();

  constructor(
    readonly from: number,
    readonly until: number,
  ) {}

  private inWindow(at: number): boolean {
    return at >= this.from && at < this.until;
  }

  add(entry: DigestEntry): void {
    if (!this.inWindow(entry.at)) return;
    if (entry.action === 'block' || entry.action === 'refresh') {
      const seen = this.hits.get(entry.target);
      if (!seen || seen.at <= entry.at) this.hits.set(entry.target, { at: entry.at, hits: entry.hitCount });
      for (const port of entry.ports ?? []) {
        let sources = this.portSources.get(port);
        if (!sources) this.portSources.set(port, (sources = new Set()));
        sources.add(entry.target);
      }
    }
    if (entry.action === 'block') {
      this.newBlocks++;
      this.blocked.add(entry.target);
      if (entry.offences > 1) {
        this.escalations++;
        this.offences.set(entry.target, Math.max(this.offences.get(entry.target) ?? 0, entry.offences));
      }
    } else if (entry.action === 'expire' || entry.action === 'unblock') {
      this.lifts++;
      if (entry.action === 'unblock') this.earlyLifts++;
    }
  }

  addMetric(metric: DigestMetricPoints): void {
    const sum = metric.points.filter((p) => this.inWindow(p.at)).reduce((total, p) => total + p.value, 0);
    if (sum <= 0) return;
    if (metric.name === 'CircuitBreakerOpen') this.breakerTrips += sum;
    else this.failures.set(metric.name, (this.failures.get(metric.name) ?? 0) + sum);
  }

  addDeadLetters(queue: DeadLetterPoints): void {
    const max = queue.points.filter((p) => this.inWindow(p.at)).reduce((m, p) => Math.max(m, p.value), 0);
    if (max > 0) this.deadLetters.set(queue.queue, Math.max(this.deadLetters.get(queue.queue) ?? 0, max));
  }

  result(top: number): Digest {
    const hits = new Map([...this.hits.entries()].map(([target, seen]) => [target, seen.hits]));
    const ports = new Map([...this.portSources.entries()].map(([port, sources]) => [String(port), sources.size]));
    return {
      from: this.from,
      until: this.until,
      newBlocks: this.newBlocks,
      sources: this.blocked.size,
      topSources: rank(hits, top),
      topPorts: rank(ports, top),
      escalations: this.escalations,
      topEscalations: rank(this.offences, top),
      lifts: this.lifts,
      earlyLifts: this.earlyLifts,
      breakerTrips: this.breakerTrips,
      failures: Object.fromEntries(this.failures),
      deadLetters: Object.fromEntries(this.deadLetters),
    };
  }
}

/** Whether a digest is worth a message: enough new blocks, or anything that went wrong. */
export function shouldSend(digest: Digest, minNewBlocks: number): boolean {
  if (digest.breakerTrips > 0) return true;
  if (Object.keys(digest.failures).length > 0 || Object.keys(digest.deadLetters).length > 0) return true;
  return digest.newBlocks >= minNewBlocks;
}

// --- rendering ----------------------------------------------------------------------------------------

/** the plain text's bound (email); the SNS message holds it and the Chatbot JSON, under 256 KB */
export const MAX_TEXT_BYTES = 64 * 1024;
/** SNS Publish: the Subject "must be less than 100 characters" (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html) */
export const MAX_SUBJECT_CHARS = 99;
/** SNS Publish: "the maximum size is 256 KB" (same page) */
export const MAX_SNS_MESSAGE_BYTES = 256 * 1024;

function iso(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function failureCount(digest: Digest): number {
  return Object.values(digest.failures).reduce((a, b) => a + b, 0);
}

/**
 * The email Subject: ASCII, one line, starting with a letter, under 100 characters (SNS Publish:
 * "must be ASCII text that begins with a letter, number, or punctuation mark; must not include
 * line breaks or control characters").
 */
export function subjectOf(digest: Digest, label: string): string {
  const parts = [`${digest.newBlocks} new block${digest.newBlocks === 1 ? '' : 's'}`];
  if (digest.breakerTrips > 0) parts.push('breaker tripped');
  const failures = failureCount(digest);
  if (failures > 0) parts.push(`${failures} failure${failures === 1 ? '' : 's'}`);
  const dead = Object.keys(digest.deadLetters).length;
  if (dead > 0) parts.push('dead letters');
  const ascii = label.replace(/[^\x20-\x7e]/g, '?');
  const subject = `portsnare ${ascii}: ${parts.join(', ')}`;
  return subject.length <= MAX_SUBJECT_CHARS ? subject : `${subject.slice(0, MAX_SUBJECT_CHARS - 3)}...`;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes on a line boundary, saying so. */
export function boundText(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const note = '\n… (cut: the digest was longer than the message allows)\n';
  const budget = maxBytes - Buffer.byteLength(note, 'utf8');
  let cut = Buffer.from(text, 'utf8').subarray(0, Math.max(0, budget)).toString('utf8');
  // a cut inside a multi-byte character decodes to U+FFFD: drop it, and the partial line
  cut = cut.replace(/\uFFFD+$/, '');
  const line = cut.lastIndexOf('\n');
  return `${line > 0 ? cut.slice(0, line) : cut}${note}`;
}

/** The plain text (email, and the webhook's `text`). */
export function renderText(digest: Digest, label: string): string {
  const lines: string[] = [];
  lines.push(`portsnare digest — ${label}`);
  lines.push(`${iso(digest.from)} to ${iso(digest.until)}`);
  lines.push('');
  lines.push(`New blocks: ${digest.newBlocks} (${digest.sources} source${digest.sources === 1 ? '' : 's'})`);
  lines.push(`Escalations (repeat offenders): ${digest.escalations}`);
  lines.push(`Lifts: ${digest.lifts} (${digest.earlyLifts} by an operator)`);
  lines.push(`Circuit breaker trips: ${digest.breakerTrips}`);
  const failures = Object.entries(digest.failures);
  lines.push(`Enforcement failures: ${failures.length ? failures.map(([name, n]) => `${name} ${n}`).join(', ') : 'none'}`);
  const dead = Object.entries(digest.deadLetters);
  lines.push(`Dead letters: ${dead.length ? dead.map(([queue, n]) => `${queue} ${n}`).join(', ') : 'none'}`);
  const list = (title: string, items: readonly Ranked[], unit: string): void => {
    if (!items.length) return;
    lines.push('');
    lines.push(title);
    for (const { key, count } of items) lines.push(`  ${key}  ${count} ${unit}`);
  };
  list('Top sources (hits):', digest.topSources, 'hits');
  list('Top decoy ports (sources):', digest.topPorts, 'sources');
  list('Top repeat offenders (offences):', digest.topEscalations, 'offences');
  lines.push('');
  lines.push('`portsnare blocks` lists every active block; `portsnare history <address>` one source\'s history.');
  return boundText(`${lines.join('\n')}\n`, MAX_TEXT_BYTES);
}

/**
 * The AWS Chatbot custom notification (https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html):
 * `version` "1.0", `source` "custom", `content.textType` "client-markdown" (the only one supported),
 * `title`, `description`, `nextSteps`; `metadata.summary`. Kept short: the summary and the top five.
 */
export function chatbotNotification(digest: Digest, label: string, id: string): Record<string, unknown> {
  const top = (items: readonly Ranked[], unit: string): string => items.slice(0, 5).map((r) => `\`${r.key}\` ${r.count} ${unit}`).join(', ') || 'none';
  const failures = Object.entries(digest.failures);
  const dead = Object.entries(digest.deadLetters);
  const description = [
    `*${digest.newBlocks}* new blocks (${digest.sources} sources), ${digest.escalations} escalations, ${digest.lifts} lifts, ${digest.breakerTrips} breaker trips`,
    `Top sources: ${top(digest.topSources, 'hits')}`,
    `Top ports: ${top(digest.topPorts, 'sources')}`,
    `Failures: ${failures.length ? failures.map(([n, c]) => `${n} ${c}`).join(', ') : 'none'}; dead letters: ${dead.length ? dead.map(([q, c]) => `${q} ${c}`).join(', ') : 'none'}`,
    `${iso(digest.from)} to ${iso(digest.until)}`,
  ].join('\n');
  return {
    version: '1.0',
    source: 'custom',
    id,
    content: {
      textType: 'client-markdown',
      title: `:shield: ${subjectOf(digest, label)}`,
      description: boundText(description, 4000),
      nextSteps: ['`portsnare blocks` lists the active blocks', '`portsnare status` shows the alarms'],
    },
    metadata: { summary: subjectOf(digest, label), eventType: 'PortsnareDigest' },
  };
}

/** Publish's parameters: plain text, or (chatbot) the JSON structure with the text for email and the custom notification for the rest. */
export function snsMessage(digest: Digest, runtime: Pick<DigestRuntime, 'label' | 'chatbot'>, id: string): { Subject: string; Message: string; MessageStructure?: 'json' } {
  const text = renderText(digest, runtime.label);
  const Subject = subjectOf(digest, runtime.label);
  if (!runtime.chatbot) return { Subject, Message: text };
  // "If you set MessageStructure to json, the value of the Message parameter must … contain at
  // least a top-level JSON key of "default" with a value that is a string"; protocol keys such as
  // "email" override it for that protocol (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
  // AWS Chatbot subscribes over https, so it gets "default".
  const Message = JSON.stringify({ default: JSON.stringify(chatbotNotification(digest, runtime.label, id)), email: text });
  if (Buffer.byteLength(Message, 'utf8') > MAX_SNS_MESSAGE_BYTES) throw new Error(`digest SNS message over ${MAX_SNS_MESSAGE_BYTES} bytes`);
  return { Subject, Message, MessageStructure: 'json' };
}

/** The webhook's JSON body: the counts, the top lists and the text. */
export function webhookBody(digest: Digest, label: string, id: string): Record<string, unknown> {
  return {
    kind: 'portsnare.digest',
    version: 1,
    id,
    deployment: label,
    from: iso(digest.from),
    until: iso(digest.until),
    summary: subjectOf(digest, label),
    newBlocks: digest.newBlocks,
    sources: digest.sources,
    escalations: digest.escalations,
    lifts: digest.lifts,
    earlyLifts: digest.earlyLifts,
    breakerTrips: digest.breakerTrips,
    failures: digest.failures,
    deadLetters: digest.deadLetters,
    topSources: digest.topSources.map((r) => ({ source: r.key, hits: r.count })),
    topPorts: digest.topPorts.map((r) => ({ port: Number(r.key), sources: r.count })),
    topEscalations: digest.topEscalations.map((r) => ({ source: r.key, offences: r.count })),
    text: renderText(digest, label),
  };
}

/** The problems of a `digest` settings input, each naming the key and the value ("digest.everyMinutes: … (got 4)"). */
export function digestSettingsProblems(input: unknown): string[] {
  const parsed = DigestSettingsSchema.safeParse(input);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => {
    let value: unknown = input;
    for (const key of issue.path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    const got = value === undefined || typeof value === 'object' ? '' : ` (got ${JSON.stringify(value)})`;
    return `digest${issue.path.map((p) => `.${String(p)}`).join('')}: ${issue.message}${got}`;
  });
}

/**
 * The host agent's digest (agent config `digest`, docs/agent-config.md): the same digest from the
 * local pipeline's store to a webhook. No SNS on a host: a webhook is the one channel.
 */
export const AgentDigestSchema = z
  .strictObject({ webhookUrl: webhookUrlField, ...commonFields })
  .superRefine((value, ctx) => refuseEmptyDay(value.quietHours, ctx));
export type AgentDigestSettings = z.output<typeof AgentDigestSchema>;
