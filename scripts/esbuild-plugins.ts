/**
 * esbuild plugins shared by the agent bundle (sensor/bundle.ts) and the Lambda bundles
 * (scripts/bundle-lambda.ts). Each only removes code a portsnare process never runs, and each
 * counts what it did, so a build fails (rather than ships the old weight unnoticed) when a
 * package's layout changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Plugin } from 'esbuild';

const ZOD_LOCALES = 'portsnare-zod-locales';

/**
 * zod's `locales` namespace with English alone: zod uses English unless told otherwise, and no
 * portsnare code selects another locale; the ~40 translations are 258 KB of every bundle.
 */
export function englishOnlyZod(count: { replaced: number }): Plugin {
  return {
    name: 'portsnare-zod-english',
    setup(build) {
      // The module's path is relative to the working directory: a namespaced path is written as
      // given into the bundle's comments and source map, and an absolute one would make the
      // bundle (and the CDK asset hash) depend on where the checkout is. The directory to
      // resolve `../locales/en.js` from travels apart, in pluginData.
      const workingDir = build.initialOptions.absWorkingDir ?? process.cwd();
      build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
        if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
        count.replaced++;
        return { path: path.relative(workingDir, args.importer).split(path.sep).join('/'), namespace: ZOD_LOCALES, pluginData: { resolveDir: path.dirname(args.importer) } };
      });
      build.onLoad({ filter: /.*/, namespace: ZOD_LOCALES }, (args) => ({
        contents: 'export { default as en } from "../locales/en.js";',
        resolveDir: (args.pluginData as { resolveDir: string }).resolveDir,
        loader: 'js',
      }));
    },
  };
}

/**
 * The AWS SDK's generated schema modules (`@aws-sdk/client-<service>/dist-es/schemas/schemas_0.js`)
 * key their trait objects by module constants (`{ [_eQN]: "Min" }` with `const _eQN =
 * "ec2QueryName"`). A computed key may run code (ToPropertyKey), so esbuild keeps every such
 * object, and with it every schema of the service, used or not: 541 KB of EC2 in each function
 * that makes four NACL calls. Writing the constant's own string literal as the key
 * (`{ "ec2QueryName": "Min" }`, the same object) lets esbuild drop the unused schemas. Only keys
 * whose identifier is a top-level `const _x = "…"` of the same file are rewritten.
 */
export function literalSchemaKeys(count: { files: number; keys: number }): Plugin {
  return {
    name: 'portsnare-sdk-schema-keys',
    setup(build) {
      build.onLoad({ filter: /[\\/]@aws-sdk[\\/]client-[a-z0-9-]+[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/ }, (args) => {
        const source = fs.readFileSync(args.path, 'utf8');
        const strings = new Map<string, string>();
        for (const m of source.matchAll(/^const (_\w+) = ("(?:[^"\\\n]|\\.)*");$/gm)) strings.set(m[1]!, m[2]!);
        let keys = 0;
        // `[_x]:` opening an object ({ [_x]: …) or following a comma / a line break within one
        const contents = source.replace(/([{,]\s*)\[(_\w+)\]:/g, (whole, before: string, name: string) => {
          const literal = strings.get(name);
          if (literal === undefined) return whole;
          keys++;
          return `${before}${literal}:`;
        });
        count.files++;
        count.keys += keys;
        return { contents, loader: 'js' };
      });
    },
  };
}
