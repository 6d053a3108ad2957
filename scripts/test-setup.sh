#!/usr/bin/env bash
# Installs every dependency the test suites need, before the first test runs, so no suite finds
# one missing: redis-server (team caps), boto3 >= 1.28 for python3 (the clients test; from local
# wheels only, scripts/boto3-setup.sh), then Debian's chromium and code-server (scripts/e2e-setup.sh).
# Idempotent; needs root (or sudo) only when Debian packages are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else echo "[test-setup] need root for: $*" >&2; exit 1; fi; }

if ! command -v redis-server >/dev/null; then
  echo "[test-setup] installing redis-server"
  as_root apt-get -o DPkg::Lock::Timeout=300 update -q
  as_root apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends redis-server
fi
bash scripts/boto3-setup.sh
bash scripts/e2e-setup.sh
