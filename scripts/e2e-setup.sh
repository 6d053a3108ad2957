#!/usr/bin/env bash
# Installs what the real-VS-Code end-to-end tests need (see /work/shared/docs/vscode-e2e.md):
#   - Debian packages: chromium, libkrb5-dev, ripgrep
#   - code-server@4.100.3 (VS Code 1.100.3) into the git-ignored .vscode-test/code-server
# Idempotent: when everything is already in place it only checks and exits (a few seconds).
# Works unattended (CI=true, no stdin); needs root (or sudo) only when Debian packages are missing.
set -euo pipefail

CODE_SERVER_VERSION="4.100.3"
VSCODE_VERSION="1.100.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.vscode-test/code-server"
CS="$TOOLS/node_modules/code-server"
VSC="$CS/lib/vscode"
export DEBIAN_FRONTEND=noninteractive
# keep code-server from writing ~/.config/code-server/config.yaml (with a random password)
export CODE_SERVER_CONFIG="$TOOLS/config.yaml"
export npm_config_yes=true npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

log() { printf '[e2e-setup] %s\n' "$*"; }
die() { printf '[e2e-setup] ERROR: %s\n' "$*" >&2; exit 1; }
START=$(date +%s)

# node-gyp builds code-server's native modules against the headers of the Node that runs them. Take
# them from the installed Node itself, whatever the user's npm configuration or node-gyp cache
# holds, so nothing is downloaded (the environment wins over any .npmrc `nodedir`).
NODE_PREFIX="$(cd "$(dirname "$(command -v node)")/.." && pwd)"
node_headers() {
  if [ -f "$NODE_PREFIX/include/node/node.h" ] && [ -f "$NODE_PREFIX/include/node/common.gypi" ]; then
    export npm_config_nodedir="$NODE_PREFIX"
    log "node-gyp uses the headers of $(node --version) in $NODE_PREFIX/include/node"
  else
    die "the Node in $NODE_PREFIX ($(node --version)) ships no headers ($NODE_PREFIX/include/node/node.h and common.gypi), which node-gyp needs to build code-server's native modules; this set-up does not download them. Use a Node install that includes them (the official nodejs.org tarball, nvm, or NodeSource's nodejs package)."
  fi
}

# ---------------------------------------------------------------- Debian packages
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else die "need root for: $*"; fi; }

wait_for_dpkg_lock() {
  local waited=0
  while fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock >/dev/null 2>&1 \
     || pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1; do
    [ "$waited" -ge 300 ] && die "dpkg/apt lock still held after 300s"
    [ $((waited % 15)) -eq 0 ] && log "waiting for another apt-get/dpkg to finish (${waited}s)..."
    sleep 3; waited=$((waited + 3))
  done
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for p in chromium libkrb5-dev ripgrep; do pkg_installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  wait_for_dpkg_lock
  # another apt-get may have installed them while we waited
  still=(); for p in "${missing[@]}"; do pkg_installed "$p" || still+=("$p"); done
  if [ "${#still[@]}" -gt 0 ]; then
    log "installing Debian packages: ${still[*]}"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -q
    wait_for_dpkg_lock
    as_root apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${still[@]}"
  fi
else
  log "Debian packages present: chromium libkrb5-dev ripgrep"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing"
command -v rg >/dev/null || die "rg (ripgrep) missing"

# ---------------------------------------------------------------- code-server check
NATIVE=(
  "$VSC/node_modules/node-pty/build/Release/pty.node"
  "$VSC/node_modules/@vscode/spdlog/build/Release/spdlog.node"
  "$VSC/node_modules/kerberos/build/Release/kerberos.node"
  "$VSC/node_modules/native-watchdog/build/Release/watchdog.node"
)
check_installed() {
  local f
  for f in "${NATIVE[@]}"; do [ -f "$f" ] || { CHECK_MSG="missing native module $f"; return 1; }; done
  # @parcel/watcher ships prebuilt binaries (@parcel/watcher-linux-x64-glibc); load them all for real
  (cd "$VSC" && node -e 'for (const m of ["node-pty","@parcel/watcher","@vscode/spdlog","kerberos","native-watchdog"]) require(m)' >/dev/null 2>&1) \
    || { CHECK_MSG="a native module of lib/vscode does not load"; return 1; }
  [ -x "$VSC/node_modules/@vscode/ripgrep/bin/rg" ] || { CHECK_MSG="missing ripgrep copy"; return 1; }
  [ -e "$VSC/node_modules.asar" ] || { CHECK_MSG="missing node_modules.asar link"; return 1; }
  [ -d "$VSC/extensions/node_modules" ] || { CHECK_MSG="extensions deps missing"; return 1; }
  (cd "$TOOLS" && node -e 'require("argon2")' >/dev/null 2>&1) || { CHECK_MSG="argon2 does not load"; return 1; }
  local v
  v="$(node "$CS/out/node/entry.js" --version 2>/dev/null | grep -F "$CODE_SERVER_VERSION" | head -1 || true)"
  case "$v" in
    *"$CODE_SERVER_VERSION"*"$VSCODE_VERSION"*) CHECK_MSG="$(printf '%s' "$v" | head -1)"; return 0 ;;
    *) CHECK_MSG="--version printed: ${v:-nothing}"; return 1 ;;
  esac
}

CHECK_MSG=""
if [ -f "$CS/package.json" ] && check_installed; then
  log "code-server already installed: $CHECK_MSG"
else
[ -n "$CHECK_MSG" ] && log "install incomplete ($CHECK_MSG); (re)installing"

# ---------------------------------------------------------------- code-server install
mkdir -p "$TOOLS"
cd "$TOOLS"
[ -f package.json ] || printf '{ "name": "vscode-test-tools", "private": true }\n' > package.json

if ! grep -q "\"version\": \"$CODE_SERVER_VERSION\"" "$CS/package.json" 2>/dev/null; then
  log "npm install --ignore-scripts code-server@$CODE_SERVER_VERSION (into $TOOLS)"
  npm install --ignore-scripts --save-exact "code-server@$CODE_SERVER_VERSION"
fi

node_headers
cd "$VSC"
log "lib/vscode: npm install --omit=dev --ignore-scripts"
npm install --omit=dev --ignore-scripts
log "lib/vscode: npm rebuild native modules"
# npm 11 skips dependency install scripts unless allowed ("not yet covered by allowScripts");
# `npm rebuild <names>` runs them for the named packages. check_installed loads them afterwards.
npm rebuild @parcel/watcher @vscode/spdlog kerberos native-watchdog node-pty @vscode/deviceid
log "lib/vscode: ripgrep from $(command -v rg)"
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
ln -sfn node_modules node_modules.asar
log "lib/vscode/extensions: npm install --omit=dev --ignore-scripts"
(cd extensions && npm install --omit=dev --ignore-scripts)

cd "$TOOLS"
log "npm rebuild argon2"
npm rebuild argon2

CHECK_MSG=""
if ! check_installed; then die "code-server install check failed: $CHECK_MSG"; fi
log "native modules load: node-pty @parcel/watcher @vscode/spdlog kerberos native-watchdog argon2"
log "code-server installed: $CHECK_MSG"
fi

# ---------------------------------------------------------------- smoke start
cd "$ROOT"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
tmp=$(mktemp -d)
log "smoke test: starting code-server on 127.0.0.1:$port"
node "$CS/out/node/entry.js" --auth none --bind-addr "127.0.0.1:$port" \
  --extensions-dir "$tmp/ext" --user-data-dir "$tmp/data" \
  --disable-telemetry --disable-update-check --disable-workspace-trust "$tmp" >"$tmp/cs.log" 2>&1 &
cs_pid=$!
ok=0
for _ in $(seq 1 60); do
  # the workbench page is only served once the VS Code server part has loaded
  if node -e '
    require("http").get(process.argv[1], r => { let b = ""; r.on("data", d => b += d);
      r.on("end", () => process.exit(r.statusCode === 200 && b.includes("workbench-web-configuration") ? 0 : 1)); })
      .on("error", () => process.exit(1)).setTimeout(10000, () => process.exit(1));' \
      "http://127.0.0.1:$port/?folder=$tmp" 2>/dev/null; then ok=1; break; fi
  kill -0 "$cs_pid" 2>/dev/null || break
  sleep 0.5
done
kill "$cs_pid" 2>/dev/null || true
wait "$cs_pid" 2>/dev/null || true
if [ "$ok" != 1 ]; then cat "$tmp/cs.log" >&2; rm -rf "$tmp"; die "code-server did not serve the workbench page"; fi
rm -rf "$tmp"
log "smoke test passed; done in $((($(date +%s) - START)))s"
