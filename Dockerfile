# portsnare sensor / host agent container.
#
# Build: docker build -t portsnare .
# For ARM64 (the Fargate sensor's default platform) on an x86 machine, register QEMU first:
#   docker run --privileged --rm tonistiigi/binfmt --install arm64
#   docker buildx build --platform linux/arm64 -t portsnare .
# Run (socket-only decoy sensor, events on stdout):
#   docker run --rm -p 23:23 -p 2323:2323 -v $PWD/agent.yaml:/etc/portsnare/agent.yaml:ro portsnare
# The image runs as the non-root `node` user (uid 1000) under tini. Low decoy ports need no
# capability: Docker (20.10+) and ECS set net.ipv4.ip_unprivileged_port_start=0 in the container's
# network namespace (the Fargate construct sets it explicitly). Kernel detection (stealth) and
# nftables enforcement need NET_ADMIN and nft, which a container sensor does not have (Fargate
# allows neither): run the host agent under systemd for those (packaging/portsnare-agent.service).

# --- build: bundle the command line into bin/portsnare.js and the chunks it loads on demand (the
# operator commands, the EventBridge publisher), no TypeScript at run time; the same bundle
# lib/agentBundle.ts builds for the EC2 sensor (Node.js 22 on both), see sensor/bundle.ts
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY core/ core/
COPY aws/ aws/
COPY sensor/ sensor/
COPY bin/ bin/
COPY scripts/esbuild-plugins.ts scripts/
# the agent's node options (sensor/bundle.ts AGENT_NODE_FLAGS): checked here, as node 22 takes them
RUN npx tsx sensor/bundle.ts /out --target node22 \
 && node --max-semi-space-size=1 --heap-growing-percent=50 /out/bin/portsnare.js agent --help > /dev/null
# The saved-SYN helper: without it a socket-only sensor (Fargate has no NET_ADMIN for kernel
# detection) misses the source of connect scans that reset at once (nmap -sT).
COPY scripts/build-native.sh scripts/
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && sh scripts/build-native.sh \
 && test -f build/savedsyn.node \
 && mkdir -p /out/build && cp build/savedsyn.node /out/build/

# --- run
FROM node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/portsnare /var/lib/portsnare \
 && chown node:node /var/lib/portsnare \
 && chmod 0750 /var/lib/portsnare
WORKDIR /opt/portsnare
# bin/portsnare.js at the same path as in a clone: `node bin/portsnare.js agent --config …`
COPY --from=build /out/ /opt/portsnare/
COPY examples/container.yaml /etc/portsnare/agent.yaml
# The agent's node options and malloc setting (sensor/bundle.ts AGENT_NODE_FLAGS, AGENT_NODE_ENV;
# BENCHMARKS.md has what they save). Source maps lie beside the bundle; --enable-source-maps
# would cost the agent ~5 MB, so it is off: NODE_OPTIONS=--enable-source-maps for mapped traces.
RUN printf '#!/bin/sh\nexec node --max-semi-space-size=1 --heap-growing-percent=50 /opt/portsnare/bin/portsnare.js "$@"\n' > /usr/local/bin/portsnare \
 && chmod 0755 /usr/local/bin/portsnare
ENV NODE_ENV=production \
    MALLOC_TRIM_THRESHOLD_=131072 \
    STATE_DIRECTORY=/var/lib/portsnare
VOLUME ["/var/lib/portsnare"]
USER node
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9466/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini as PID 1: SIGTERM reaches the agent (which stops within its deadline), zombies are reaped
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/portsnare"]
CMD ["agent", "--config", "/etc/portsnare/agent.yaml"]
