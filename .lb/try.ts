import { build, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import { PortsnareFunction } from '/work/main/lib/PortsnareFunction';
const keys: Plugin = {
  name: 'schema-keys',
  setup(b) {
    b.onLoad({ filter: /client-ec2\/dist-es\/schemas\/schemas_0\.js$/ }, (args) => {
      let src = readFileSync(args.path, 'utf8');
      const consts = new Map<string, string>();
      for (const m of src.matchAll(/^const (_\w+) = ("[^"]*");$/gm)) consts.set(m[1]!, m[2]!);
      src = src.replace(/\{ \[(_\w+)\]:/g, (all, k) => (consts.has(k) ? `{ ${consts.get(k)}:` : all)).replace(/,\s*\[(_\w+)\]:/g, (all, k) => (consts.has(k) ? `, ${consts.get(k)}:` : all)).replace(/\n(\s*)\[(_\w+)\]:/g, (all, sp, k) => (consts.has(k) ? `\n${sp}${consts.get(k)}:` : all));
      return { contents: src, loader: 'js' };
    });
  },
};
(async () => {
  const o = PortsnareFunction.bundling();
  for (const plugins of [[], [keys]]) {
    const r = await build({ entryPoints: ['/work/main/lambda/enforce/handler.ts'], bundle: true, platform: 'node', target: o.target, format: 'cjs', minify: o.minify, mainFields: o.mainFields ? [...o.mainFields] : undefined, outfile: `/tmp/lb/try${plugins.length}/index.js`, metafile: true, plugins, logLevel: 'silent' });
    const out = Object.values(r.metafile!.outputs)[0]!;
    const ec2 = Object.entries(out.inputs).filter(([f]) => /client-ec2/.test(f)).reduce((s, [, v]) => s + v.bytesInOutput, 0);
    console.log(plugins.length, 'total', Math.round(out.bytes / 1024), 'ec2', Math.round(ec2 / 1024));
  }
})();
