/**
 * One Lambda function's bundle: lambda/<name>/handler.ts bundled by esbuild into `index.js` (+ its
 * source map, without sources), CommonJS for Node.js 22, minified, the packages' ES module builds
 * preferred so unused SDK commands drop out, and the AWS SDK bundled (none taken from the
 * runtime: a function runs the SDK version the lock file pins and the tests ran with).
 *
 * lib/PortsnareFunction.ts runs it at synth (in a child process: esbuild plugins need its
 * asynchronous API, and CDK stages an asset synchronously), bench/bundles.bench.ts measures what it
 * writes. Its two plugins (scripts/esbuild-plugins.ts) leave out what no function runs: zod's
 * translated messages and the SDK schemas of operations the function never calls; a build that
 * finds nothing to leave out fails, so a package's changed layout cannot bring the weight back
 * unnoticed.
 *
 * `tsx scripts/bundle-lambda.ts NAME OUTDIR`
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Metafile } from 'esbuild';
import { englishOnlyZod, literalSchemaKeys } from './esbuild-plugins';

/** the Lambda runtime's Node.js major (lib/PortsnareFunction.ts PORTSNARE_RUNTIME) */
export const LAMBDA_NODE_TARGET = 'node22';
/** the file the handler is exported from: the function's handler is `index.handler` */
export const LAMBDA_BUNDLE_FILE = 'index.js';

export interface LambdaBundleResult {
  readonly metafile: Metafile;
  /** SDK schema modules rewritten, and keys turned into literals in them */
  readonly schemaFiles: number;
  readonly schemaKeys: number;
}

export async function buildLambdaBundle(root: string, name: string, outputDir: string): Promise<LambdaBundleResult> {
  const esbuild = await import('esbuild');
  const entry = path.join(root, 'lambda', name, 'handler.ts');
  if (!fs.existsSync(entry)) throw new Error(`no Lambda function ${JSON.stringify(name)}: ${entry} does not exist`);
  // Source map paths are relative to where the bundle would sit in the checkout, so the output
  // (whose hash is the CDK asset's) does not depend on the directory it is written to.
  const virtualDir = path.join(root, '.lambda-bundle', name);
  const zod = { replaced: 0 };
  const schemas = { files: 0, keys: 0 };
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: LAMBDA_NODE_TARGET,
    format: 'cjs',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    legalComments: 'none',
    mainFields: ['module', 'main'],
    outfile: path.join(virtualDir, LAMBDA_BUNDLE_FILE),
    metafile: true,
    write: false,
    logLevel: 'silent',
    plugins: [englishOnlyZod(zod), literalSchemaKeys(schemas)],
  });
  const usesZod = Object.keys(result.metafile.inputs).some((input) => /node_modules[\\/]zod[\\/]/.test(input));
  if (usesZod && zod.replaced === 0) throw new Error("zod's locales index (../locales/index.js) was not imported: zod's layout changed, see scripts/esbuild-plugins.ts");
  if (schemas.files > 0 && schemas.keys === 0) throw new Error('no computed key was rewritten in the SDK schema modules: their layout changed, see scripts/esbuild-plugins.ts');
  fs.mkdirSync(outputDir, { recursive: true });
  for (const file of result.outputFiles) fs.writeFileSync(path.join(outputDir, path.relative(virtualDir, file.path)), file.contents);
  return { metafile: result.metafile, schemaFiles: schemas.files, schemaKeys: schemas.keys };
}

if (require.main === module) {
  const [name, outputDir] = process.argv.slice(2);
  if (!name || !outputDir) {
    process.stderr.write('usage: tsx scripts/bundle-lambda.ts NAME OUTDIR\n');
    process.exitCode = 2;
  } else {
    buildLambdaBundle(path.join(__dirname, '..'), name, outputDir).catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    });
  }
}
