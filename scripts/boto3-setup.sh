#!/usr/bin/env bash
# Makes sure python3 has boto3 >= 1.28 for test/server/clients.test.ts: older versions (Debian's
# python3-boto3 is 1.26) ignore AWS_ENDPOINT_URL_BEDROCK_RUNTIME and would call AWS itself. Installs
# only from wheels already on the machine (BOTO3_WHEEL_DIRS, default: /opt/pypi*/files and
# /opt/wheels), never from the network; otherwise it says what to do and leaves the failure to the
# test (under CI=true the clients test fails with the same advice). Idempotent; always exits 0.
set -uo pipefail

MIN_MAJOR=1 MIN_MINOR=28
log() { printf '[test-setup] %s\n' "$*"; }
version() { python3 -c 'import boto3; print(boto3.__version__)' 2>/dev/null; }
recent_enough() {
  python3 -c "import sys, boto3; sys.exit(0 if tuple(int(p) for p in boto3.__version__.split('.')[:2]) >= ($MIN_MAJOR, $MIN_MINOR) else 1)" 2>/dev/null
}

if recent_enough; then
  log "boto3 $(version) for python3: ok"
  exit 0
fi
found="$(version)"

# Local wheel folders that hold a boto3 wheel; its dependencies may sit in any of them.
links=()
with_boto3=0
for dir in ${BOTO3_WHEEL_DIRS-/opt/pypi*/files /opt/wheels}; do
  [ -d "$dir" ] || continue
  links+=(--find-links "$dir")
  compgen -G "$dir/boto3-*.whl" >/dev/null && with_boto3=1
done
if [ "$with_boto3" = 1 ]; then
  log "installing boto3 >= $MIN_MAJOR.$MIN_MINOR for python3 from local wheels (${links[*]}; no network)"
  python3 -m pip install --quiet --no-index --disable-pip-version-check "${links[@]}" "boto3>=$MIN_MAJOR.$MIN_MINOR" ||
    log "pip could not install boto3 from those wheels (see above)"
fi

if recent_enough; then
  log "boto3 $(version) for python3: ok"
else
  log "boto3 >= $MIN_MAJOR.$MIN_MINOR for python3 is missing (found: ${found:-none}): the boto3 cases of test/server/clients.test.ts" \
    "are skipped, and fail under CI=true. Install it: python3 -m pip install 'boto3>=$MIN_MAJOR.$MIN_MINOR' (Debian's python3-boto3 is" \
    "too old), or offline: put its wheels in a folder and set BOTO3_WHEEL_DIRS to it before scripts/test-setup.sh" >&2
fi
exit 0
