import { build } from 'esbuild';
import { PortsnareFunction } from '/work/main/lib/PortsnareFunction';
(async () => {
  const o = PortsnareFunction.bundling();
  for (const fn of ['decide', 'enforce', 'cleanup']) {
    const r = await build({ entryPoints: [`/work/main/lambda/${fn}/handler.ts`], bundle: true, platform: 'node', target: o.target, format: 'cjs', minify: o.minify, mainFields: o.mainFields ? [...o.mainFields] : undefined, write: false, metafile: true, outfile: '/tmp/x.js', logLevel: 'silent' });
    const out = Object.values(r.metafile!.outputs)[0]!;
    const by: Record<string, number> = {};
    for (const [file, v] of Object.entries(out.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
      const key = m ? m[1]! : file.split('/').slice(0, 2).join('/');
      by[key] = (by[key] ?? 0) + v.bytesInOutput;
    }
    console.log(fn, Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `${k}:${Math.round(v / 1024)}K`).join(' '));
  }
})();
