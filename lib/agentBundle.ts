/**
 * The agent bundle: bin/portsnare.ts bundled with esbuild at synth by sensor/bundle.ts, on this
 * machine (no Docker) — the same bundle the Dockerfile builds: bin/portsnare.js and the chunks it
 * loads on demand — beside the systemd unit and its drop-in.
 * An EC2 sensor downloads this small asset and runs it with the distribution's Node.js: nothing
 * is installed from the npm registry on the instance, and the asset's hash is the hash of the
 * bundle (AssetHashType.OUTPUT), so a change to an unrelated file of the repository changes
 * neither the asset nor the instance.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type { Construct } from 'constructs';
import { PROJECT_ROOT } from './PortsnareFunction';

/** Node.js major the bundle targets: the EC2 sensor installs it, the Dockerfile runs it. */
export const AGENT_NODE_MAJOR = 22;
/** The bundle's entry point inside the asset (and under /opt/portsnare on the instance). */
export const AGENT_BUNDLE_ENTRY = 'bin/portsnare.js';
/** Files of packaging/ copied into the asset beside the bundle. */
export const AGENT_PACKAGING_FILES = ['portsnare-agent.service', 'portsnare-agent-net-admin.conf'] as const;

export interface AgentBundleOptions {
  /**
   * The checkout the agent is bundled from (bin/, core/, sensor/, packaging/, node_modules/).
   * @default this repository
   */
  readonly projectRoot?: string;
}

/**
 * Writes the agent bundle into `outputDir`: bin/portsnare.js and its chunks (+ their source maps,
 * without sources) and packaging/. Source map paths are relative to where the bundle would sit in
 * the checkout, so the output does not depend on the staging directory.
 */
export function buildAgentBundle(outputDir: string, options: AgentBundleOptions = {}): void {
  const root = options.projectRoot ?? PROJECT_ROOT;
  // The build (sensor/bundle.ts) uses esbuild plugins, which only its asynchronous API runs, and
  // CDK stages an asset synchronously: it runs in a child process, through tsx as in a clone.
  const tsx = require.resolve('tsx/cli', { paths: [root] });
  const built = spawnSync(process.execPath, [tsx, path.join(root, 'sensor', 'bundle.ts'), outputDir, '--target', `node${AGENT_NODE_MAJOR}`], { cwd: root, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`the agent bundle did not build (sensor/bundle.ts): ${built.error?.message ?? built.stderr.trim()}`);
  if (!fs.existsSync(path.join(outputDir, AGENT_BUNDLE_ENTRY))) throw new Error(`the agent bundle has no ${AGENT_BUNDLE_ENTRY}`);
  fs.mkdirSync(path.join(outputDir, 'packaging'), { recursive: true });
  for (const name of AGENT_PACKAGING_FILES) fs.copyFileSync(path.join(root, 'packaging', name), path.join(outputDir, 'packaging', name));
}

/** The agent bundle as an S3 asset, built locally at synth; its hash is the bundle's. */
export function agentBundleAsset(scope: Construct, id: string, options: AgentBundleOptions = {}): s3assets.Asset {
  const root = options.projectRoot ?? PROJECT_ROOT;
  return new s3assets.Asset(scope, id, {
    // Only staged through the bundling below; with an OUTPUT hash, what lies here does not count.
    path: path.join(root, 'packaging'),
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: local bundling always succeeds or throws (esbuild's own error).
      image: DockerImage.fromRegistry('portsnare-local-bundling-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          buildAgentBundle(outputDir, { projectRoot: root });
          return true;
        },
      },
    },
  });
}
