import { build } from 'esbuild';
import { PortsnareFunction } from '/work/main/lib/PortsnareFunction';
(async () => {
  const o = PortsnareFunction.bundling();
  for (const fn of ['enforce']) {
    const r = await build({ entryPoints: [`/work/main/lambda/${fn}/handler.ts`], bundle: true, platform: 'node', target: o.target, format: 'cjs', minify: o.minify, mainFields: o.mainFields ? [...o.mainFields] : undefined, write: false, metafile: true, outfile: '/tmp/x.js', logLevel: 'silent' });
    const out = Object.values(r.metafile!.outputs)[0]!;
    const rows = Object.entries(out.inputs).filter(([f]) => /zod|client-ec2/.test(f)).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 14);
    for (const [f, v] of rows) console.log(Math.round(v.bytesInOutput / 1024) + 'K', f.replace(/.*node_modules\//, ''));
    const locales = Object.entries(out.inputs).filter(([f]) => /locales/.test(f)).reduce((s, [, v]) => s + v.bytesInOutput, 0);
    console.log('locales total', Math.round(locales / 1024) + 'K');
  }
})();
