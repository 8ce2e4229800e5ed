#!/bin/sh
# Builds the optional saved-SYN helper (sensor/native/savedsyn.c → build/savedsyn.node), run by
# `npm ci`/`npm install`. Needs Linux, a C compiler and Node's headers (node_api.h); without them
# it says so and the agent runs without it (socket listeners may then miss the source of connect
# scans that reset at once; kernel detection, `stealth: true`, does not need it).
set -u
cd "$(dirname "$0")/.." || exit 0
out=build/savedsyn.node
say() { echo "portsnare: $*" >&2; }
[ "$(uname -s)" = Linux ] || { say "saved-SYN helper not built (Linux only)"; exit 0; }
cc=$(command -v cc || command -v gcc || true)
node_prefix=$(dirname "$(dirname "$(command -v node)")")
inc=""
for dir in "${npm_config_nodedir:-/nonexistent}/include/node" "$node_prefix/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then inc=$dir; break; fi
done
if [ -z "$cc" ] || [ -z "$inc" ]; then
  say "saved-SYN helper not built (needs a C compiler and Node's headers); the agent runs without it"
  exit 0
fi
mkdir -p build
if "$cc" -O2 -Wall -shared -fPIC -I"$inc" -o "$out.tmp" sensor/native/savedsyn.c; then
  mv "$out.tmp" "$out"
  echo "portsnare: built $out"
else
  rm -f "$out.tmp"
  say "saved-SYN helper failed to build; the agent runs without it"
fi
exit 0
