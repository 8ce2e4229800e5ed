import { defineConfig } from 'vitest/config';

// One runner for the whole repository. Two projects:
// - "unit": pure core, adapters against stateful fakes, CDK templates, the CLI; runs in parallel.
// - "lab": real sockets, network namespaces, nftables and nmap; one file at a time, because the
//   labs share the kernel (namespaces, nft tables) and the two cores of the machine.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/lab/**', 'node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
