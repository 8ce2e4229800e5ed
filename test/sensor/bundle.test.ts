/**
 * The agent bundle (sensor/bundle.ts) reads only what the configuration uses, so its footprint
 * cannot regress silently (issue 12): the bundle is built as the Dockerfile and the EC2 sensor
 * build it, run in a child process, and the files node loaded are read from its module cache.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_NODE_ENV, AGENT_NODE_FLAGS, BUNDLE_ENTRY, LAZY_CHUNKS, buildAgentBundle } from '../../sensor/bundle';
import { FakePutEvents } from './fake-putevents';
import { freePorts, tcpProbe, tempDir, until } from './helpers';

const ROOT = join(__dirname, '..', '..');
const TARGET = `node${process.versions.node.split('.')[0]}`;

/** Writes the module cache (every file node loaded) to `out` when the process exits. */
const LOADED_PROBE = `process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADED_OUT, JSON.stringify(Object.keys(require.cache))));\n`;

/** The inputs esbuild put into one output file, as paths relative to the checkout. */
function inputsOf(metafile: Metafile, output: string): string[] {
  const key = Object.keys(metafile.outputs).find((name) => name.endsWith(output));
  if (!key) throw new Error(`no output ${output} in the metafile`);
  return Object.keys(metafile.outputs[key]!.inputs);
}

describe('the agent bundle', () => {
  const dir = tempDir('bundle');
  let entry = '';
  let metafile: Metafile;
  let files: string[] = [];

  beforeAll(async () => {
    const built = await buildAgentBundle({ root: ROOT, outputDir: join(dir.path, 'out'), target: TARGET, sourcemap: false });
    entry = join(dir.path, 'out', BUNDLE_ENTRY);
    metafile = built.metafile;
    files = built.files;
    writeFileSync(join(dir.path, 'loaded.js'), LOADED_PROBE);
  }, 120_000);
  afterAll(() => dir.remove());

  /** Runs the bundled agent with `config` until it has started, stops it, returns the files it loaded. */
  async function loadedBy(config: object, env: Record<string, string> = {}, whileRunning?: (port: number) => Promise<void>): Promise<string[]> {
    const [port] = await freePorts(1);
    const name = `config-${Math.random().toString(36).slice(2)}`;
    const path = join(dir.path, `${name}.json`);
    writeFileSync(path, JSON.stringify({ sensorId: 'bundle', listen: ['127.0.0.1'], tcpPorts: [port], udpPorts: [], stateDirectory: join(dir.path, name), health: { enabled: false }, ...config }));
    const out = join(dir.path, `${name}.loaded.json`);
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, '--require', join(dir.path, 'loaded.js'), entry, 'agent', '--config', path], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...AGENT_NODE_ENV, LOADED_OUT: out, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await until(() => stderr.includes('"agent started"') || child.exitCode !== null, 30_000, 'the bundled agent to start');
    expect(stderr).toContain('"agent started"');
    await whileRunning?.(port!);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    return (JSON.parse(readFileSync(out, 'utf8')) as string[]).map((file) => file.slice(file.lastIndexOf('/') + 1));
  }

  it('is the entry and one file per lazy chunk beside it', () => {
    expect(files).toEqual([BUNDLE_ENTRY, ...Object.keys(LAZY_CHUNKS).map((name) => `bin/${name}.js`)].sort());
  });

  it("holds no AWS SDK, operator command or zod translation in the entry: those are in the chunks or left out", () => {
    const agent = inputsOf(metafile, BUNDLE_ENTRY);
    expect(agent).toContain('sensor/agent.ts');
    expect(agent.filter((input) => /node_modules\/(@aws-sdk|@smithy)\//.test(input))).toEqual([]);
    expect(agent).not.toContain('bin/commands/program.ts');
    expect(agent).not.toContain('sensor/publish/eventbridge.ts');
    expect(agent.filter((input) => input.includes('node_modules/zod/v4/locales/')).map((input) => input.slice(input.indexOf('zod/')))).toEqual(['zod/v4/locales/en.js']);
    // where they went: the EventBridge chunk carries its SDK client, the operator chunk its commands
    const eventbridge = inputsOf(metafile, 'bin/portsnare-eventbridge.js');
    expect(eventbridge.some((input) => input.includes('node_modules/@aws-sdk/client-eventbridge/'))).toBe(true);
    // and takes core/event.ts (with zod under it) from the bundle that loads it: one zod a process
    expect(eventbridge.filter((input) => input.includes('node_modules/zod/') || input === 'core/event.ts')).toEqual([]);
    expect(inputsOf(metafile, 'bin/portsnare-operator.js')).toContain('bin/commands/program.ts');
  });

  it('starts with local sinks only without reading any chunk (no AWS SDK in the process)', async () => {
    const loaded = await loadedBy({ sinks: [{ type: 'file', path: join(dir.path, 'events.jsonl') }] });
    expect(loaded).toEqual(['loaded.js', 'portsnare.js']);
  }, 60_000);

  it('reads the EventBridge chunk when an eventbridge sink is configured, and publishes through it', async () => {
    const service = new FakePutEvents();
    const endpoint = await service.start();
    try {
      const loaded = await loadedBy({ sinks: [{ type: 'eventbridge', busName: 'bus', region: 'eu-west-1', endpoint }] }, { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret' }, async (port) => {
        await tcpProbe('127.0.0.1', port, '127.99.0.9');
        await until(() => service.scans().length > 0, 10_000, 'the event at the fake EventBridge');
      });
      expect(loaded).toEqual(['loaded.js', 'portsnare.js', 'portsnare-eventbridge.js']);
      expect(service.details()[0]).toMatchObject({ attacker: '127.99.0.9' });
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('runs the operator commands from their chunk', async () => {
    const child = spawn(process.execPath, [entry, 'status', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
    expect(stdout).toContain('Usage: portsnare status');
  }, 30_000);
});

describe('the bundle build', () => {
  /** A checkout of four files: the entry, the operator program, the EventBridge publisher and what it shares. */
  function checkout(entrySource: string): { root: string; remove: () => void } {
    const dir = tempDir('bundle-checkout');
    for (const [file, text] of Object.entries({
      'bin/portsnare.ts': entrySource,
      'bin/commands/program.ts': "import { z } from 'zod';\nexport const run = (): unknown => z.string();\n",
      'sensor/publish/eventbridge.ts': "import { name } from '../../core/event';\nexport const publisher = name;\n",
      'core/event.ts': "export const name = 'Scan Detected';\n",
    })) {
      mkdirSync(join(dir.path, file, '..'), { recursive: true });
      writeFileSync(join(dir.path, file), text);
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir.path, 'node_modules'));
    return { root: dir.path, remove: dir.remove };
  }

  it('fails when a module of a lazy chunk is imported statically, naming the importer and the chunk', async () => {
    const fake = checkout("import { publisher } from '../sensor/publish/eventbridge';\nrequire('./commands/program');\nconsole.log(publisher);\n");
    try {
      await expect(buildAgentBundle({ root: fake.root, outputDir: join(fake.root, 'out'), target: TARGET })).rejects.toThrow(/bin\/portsnare\.ts imports sensor\/publish\/eventbridge\.ts statically; it is the lazy chunk portsnare-eventbridge/);
    } finally {
      fake.remove();
    }
  });

  it('builds the same checkout once the module is loaded on demand', async () => {
    const fake = checkout("void import('../sensor/publish/eventbridge').then((m) => console.log(m.publisher));\nrequire('./commands/program');\n");
    try {
      const built = await buildAgentBundle({ root: fake.root, outputDir: join(fake.root, 'out'), target: TARGET, sourcemap: false });
      expect(built.files).toEqual(['bin/portsnare-eventbridge.js', 'bin/portsnare-operator.js', 'bin/portsnare.js']);
      expect(readFileSync(join(fake.root, 'out', 'bin', 'portsnare.js'), 'utf8')).toContain('require("./portsnare-eventbridge.js")');
      // the chunk runs, with core/event.ts from the bundle that loaded it
      expect(spawnSync(process.execPath, [join(fake.root, 'out', 'bin', 'portsnare.js')], { encoding: 'utf8' }).stdout).toBe('Scan Detected\n');
    } finally {
      fake.remove();
    }
  });
});

describe('how the agent is started', () => {
  const unit = readFileSync(join(ROOT, 'packaging', 'portsnare-agent.service'), 'utf8');
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('the systemd unit and the Docker image run node with the flags and the environment the benchmarks measure', () => {
    const flags = AGENT_NODE_FLAGS.join(' ');
    expect(unit).toMatch(new RegExp(`^ExecStart=/usr/bin/node ${flags} /opt/portsnare/bin/portsnare\\.js agent `, 'm'));
    expect(dockerfile).toContain(`exec node ${flags} /opt/portsnare/bin/portsnare.js "$@"`);
    // the image's build checks that its node takes the flags
    expect(dockerfile).toContain(`node ${flags} /out/bin/portsnare.js agent --help`);
    for (const [name, value] of Object.entries(AGENT_NODE_ENV)) {
      expect(unit).toMatch(new RegExp(`^Environment=${name}=${value}$`, 'm'));
      expect(dockerfile).toMatch(new RegExp(`^\\s+${name}=${value} \\\\$`, 'm'));
    }
  });
});
