/**
 * The agent bundle: bin/portsnare.ts built with esbuild into bin/portsnare.js, what the EC2 sensor
 * (lib/agentBundle.ts) and the container (Dockerfile) run and what bench/agent.bench.ts measures.
 * A host agent on every protected instance should cost little (issue 12), so the agent's process
 * reads only what its configuration uses:
 * - lazy chunks (LAZY_CHUNKS): a module the code loads on demand (`require()`, `await import()`)
 *   is a file of its own beside the entry, so `portsnare agent` never reads the operator commands
 *   (with the AWS SDK clients of `--stack`), nor the EventBridge publisher (with the AWS SDK)
 *   unless an `eventbridge` sink is configured. A static import of a chunk's module fails the
 *   build: it would pull the chunk back into the agent. A hosted chunk (HOSTED_CHUNKS) takes
 *   SHARED_MODULES from the bundle that loads it, so the process holds one zod, not two.
 * - zod's translated error messages (its locales other than English, which zod uses by default)
 *   are left out: the agent never selects another locale, and parsing them cost about 3 MB.
 * - whitespace and syntax are minified, identifiers kept (stack traces stay readable); the source
 *   maps lie beside, without sources.
 * The process itself is started with AGENT_NODE_FLAGS and AGENT_NODE_ENV (the systemd unit, the
 * Dockerfile; the benchmarks launch it the same way). BENCHMARKS.md has the figures.
 *
 * `npm run bundle` (tsx sensor/bundle.ts OUTDIR [--target nodeNN]) writes OUTDIR/bin/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Metafile, Plugin } from 'esbuild';
import { englishOnlyZod } from '../scripts/esbuild-plugins';

/** The command line's entry point inside the bundle directory. */
export const BUNDLE_ENTRY = 'bin/portsnare.js';

/** Chunks beside the entry (bin/<name>.js) and the module each one holds, from the checkout root. */
export const LAZY_CHUNKS: Readonly<Record<string, string>> = {
  /** every command but `agent` and `import-portsentry` (bin/portsnare.ts loads it on demand) */
  'portsnare-operator': 'bin/commands/program.ts',
  /** only with an `eventbridge` sink (sensor/publish/sinks.ts) */
  'portsnare-eventbridge': 'sensor/publish/eventbridge.ts',
};

/**
 * Chunks built apart from the entry, which take SHARED_MODULES from the bundle that loads them
 * rather than carrying copies: the EventBridge publisher needs only names from core/event.ts,
 * whose schemas would bring a second zod into the process.
 */
export const HOSTED_CHUNKS: readonly string[] = ['portsnare-eventbridge'];
export const SHARED_MODULES: readonly string[] = ['core/event.ts'];

/**
 * V8 options the agent runs with (measured in BENCHMARKS.md; not allowed in NODE_OPTIONS, so on
 * the command line):
 * - `--max-semi-space-size=1`: the young generation stays at 1 MB a semi-space instead of growing
 *   to 16 MB under a connect flood; the flood's garbage is short-lived sockets, scavenged early.
 * - `--heap-growing-percent=50`: after a full collection the old generation may grow by half its
 *   live size before the next one (V8's own factor goes up to 4×): a flood's promoted garbage is
 *   collected at ~15 MB rather than ~30 MB.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=50'];

/**
 * Environment of the agent's process: glibc keeps at most 128 KiB free at the top of its heap
 * (the static default; without the variable glibc raises the threshold after freeing large
 * blocks, so the parser's start-up memory stays resident). Ignored by other C libraries.
 */
export const AGENT_NODE_ENV: Readonly<Record<string, string>> = { MALLOC_TRIM_THRESHOLD_: '131072' };

export interface AgentBuildOptions {
  /** the checkout (bin/, core/, sensor/, node_modules/) */
  readonly root: string;
  /** where bin/ is written */
  readonly outputDir: string;
  /** esbuild target, e.g. node22 */
  readonly target: string;
  /** write source maps (without sources) beside the files (default true) */
  readonly sourcemap?: boolean;
}

export interface AgentBuildResult {
  /** files written, relative to outputDir */
  readonly files: string[];
  /** esbuild's metafile: which inputs each output holds */
  readonly metafile: Metafile;
}

/** Builds the bundle into `outputDir` (bin/portsnare.js and the chunks). */
export async function buildAgentBundle(options: AgentBuildOptions): Promise<AgentBuildResult> {
  const esbuild = await import('esbuild');
  const root = path.resolve(options.root);
  // Paths in the source maps are relative to where the bundle would sit in the checkout, so the
  // output does not depend on the directory it is written to (the CDK asset hash is the output's).
  const virtualDir = path.join(root, '.agent-bundle');
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: options.target,
    format: 'cjs',
    outdir: path.join(virtualDir, 'bin'),
    sourcemap: options.sourcemap ?? true,
    sourcesContent: false,
    legalComments: 'none',
    minifyWhitespace: true,
    minifySyntax: true,
    metafile: true,
    write: false,
    logLevel: 'silent',
  } as const;
  const entries = (names: readonly string[]): Record<string, string> => Object.fromEntries(names.map((name) => [name, path.join(root, LAZY_CHUNKS[name]!)]));
  const hosts = Object.keys(LAZY_CHUNKS).filter((name) => !HOSTED_CHUNKS.includes(name));
  const zod = { replaced: 0 };
  const built = [
    await esbuild.build({ ...common, entryPoints: { portsnare: path.join(root, 'bin', 'portsnare.ts'), ...entries(hosts) }, plugins: [lazyChunks(root), englishOnlyZod(zod)] }),
    await esbuild.build({ ...common, entryPoints: entries(HOSTED_CHUNKS), plugins: [sharedFromHost(root), lazyChunks(root), englishOnlyZod({ replaced: 0 })] }),
  ];
  // zod's layout changed: fail rather than ship its locales unnoticed
  if (zod.replaced === 0) throw new Error("zod's locales index (../locales/index.js) was not imported: zod's layout changed, see sensor/bundle.ts");
  const files: string[] = [];
  for (const file of built.flatMap((result) => result.outputFiles)) {
    const relative = path.relative(virtualDir, file.path);
    const target = path.join(options.outputDir, relative);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.contents);
    files.push(relative);
  }
  const metafile: Metafile = { inputs: {}, outputs: {} };
  for (const result of built) {
    Object.assign(metafile.inputs, result.metafile.inputs);
    Object.assign(metafile.outputs, result.metafile.outputs);
  }
  return { files: files.sort(), metafile };
}

/** where a host bundle leaves SHARED_MODULES for its hosted chunks */
const SHARED_KEY = 'globalThis[Symbol.for("portsnare.bundle.shared")]';
const SHARED_NAMESPACE = 'portsnare-shared';

/** In a hosted chunk, SHARED_MODULES are the instances of the bundle that loaded the chunk. */
function sharedFromHost(root: string): Plugin {
  const shared = new Set(SHARED_MODULES.map((source) => path.join(root, source)));
  return {
    name: 'portsnare-shared-from-host',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.namespace !== 'file') return undefined;
        const base = path.resolve(args.resolveDir, args.path);
        const file = [base, `${base}.ts`].find((candidate) => shared.has(candidate));
        return file === undefined ? undefined : { path: path.relative(root, file), namespace: SHARED_NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: SHARED_NAMESPACE }, (args) => ({
        contents: `const shared = ${SHARED_KEY};\nif (!shared || !shared[${JSON.stringify(args.path)}]) throw new Error(${JSON.stringify(`${args.path}: this chunk takes it from the bundle that loads it (sensor/bundle.ts)`)});\nmodule.exports = shared[${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
    },
  };
}

const CHUNK_NAMESPACE = 'portsnare-chunk';

/** Loads of LAZY_CHUNKS modules become `require('./<chunk>.js')` of the file beside the bundle. */
function lazyChunks(root: string): Plugin {
  const byFile = new Map(Object.entries(LAZY_CHUNKS).map(([name, source]) => [path.join(root, source), name]));
  const chunkOf = (resolveDir: string, specifier: string): string | undefined => {
    const base = path.resolve(resolveDir, specifier);
    return byFile.get(base) ?? byFile.get(`${base}.ts`) ?? byFile.get(base.replace(/\.js$/, '.ts'));
  };
  return {
    name: 'portsnare-lazy-chunks',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.namespace !== 'file' || args.kind === 'entry-point') return undefined;
        const chunk = chunkOf(args.resolveDir, args.path);
        if (chunk === undefined) return undefined;
        if (args.kind !== 'require-call' && args.kind !== 'dynamic-import') {
          const importer = path.relative(root, args.importer);
          return { errors: [{ text: `${importer} imports ${LAZY_CHUNKS[chunk]} statically; it is the lazy chunk ${chunk} of the agent bundle (sensor/bundle.ts): load it with await import()` }] };
        }
        return { path: chunk, namespace: CHUNK_NAMESPACE };
      });
      // the stand-in: the chunk's exports, read from the file beside the bundle when first needed;
      // a hosted chunk finds this bundle's SHARED_MODULES first
      build.onLoad({ filter: /.*/, namespace: CHUNK_NAMESPACE }, (args) => {
        const share = HOSTED_CHUNKS.includes(args.path) ? SHARED_MODULES.map((source) => `shared[${JSON.stringify(source)}] ??= require(${JSON.stringify(path.join(root, source))});\n`).join('') : '';
        return { contents: `${share ? `const shared = (${SHARED_KEY} ??= {});\n${share}` : ''}module.exports = require(${JSON.stringify(`./${args.path}.js`)});`, loader: 'js', resolveDir: root };
      });
      build.onResolve({ filter: /^\.\/portsnare-/, namespace: CHUNK_NAMESPACE }, (args) => ({ path: args.path, external: true }));
    },
  };
}

/** `tsx sensor/bundle.ts OUTDIR [--target nodeNN]` */
async function cli(argv: string[]): Promise<void> {
  const outputDir = argv[0];
  const at = argv.indexOf('--target');
  const target = at >= 0 ? argv[at + 1] : `node${process.versions.node.split('.')[0]}`;
  if (!outputDir || outputDir.startsWith('--') || !target) throw new Error('usage: tsx sensor/bundle.ts OUTDIR [--target nodeNN]');
  const { files } = await buildAgentBundle({ root: path.join(__dirname, '..'), outputDir, target });
  for (const file of files) process.stdout.write(`${path.join(outputDir, file)}\n`);
}

if (require.main === module) {
  cli(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
