#!/usr/bin/env bash
# Official-SDK compatibility check: runs Finch's Python SDK (finch-api, pinned) against a
# running finchgate sandbox emulator. See check.py for what is checked.
#
# Usage: scripts/sdk_check/run.sh [SANDBOX_URL [CLIENT_ID [CLIENT_SECRET]]]
#   or set SANDBOX_URL, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET.
# The virtualenv lives in $SDK_VENV (default: target/sdk-venv) and is reused between runs.
set -euo pipefail

FINCH_API_VERSION="2.9.1" # the SDK version this check was verified with

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

SANDBOX_URL="${1:-${SANDBOX_URL:-}}"
SANDBOX_CLIENT_ID="${2:-${SANDBOX_CLIENT_ID:-}}"
SANDBOX_CLIENT_SECRET="${3:-${SANDBOX_CLIENT_SECRET:-}}"
for var in SANDBOX_URL SANDBOX_CLIENT_ID SANDBOX_CLIENT_SECRET; do
    if [ -z "${!var}" ]; then
        echo "sdk_check: $var is not set (usage: $0 SANDBOX_URL CLIENT_ID CLIENT_SECRET)" >&2
        exit 2
    fi
done

venv="${SDK_VENV:-$root/target/sdk-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import sys, finch; sys.exit(finch.__version__ != '$FINCH_API_VERSION')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "finch-api==$FINCH_API_VERSION"
fi

export SANDBOX_URL SANDBOX_CLIENT_ID SANDBOX_CLIENT_SECRET
exec "$venv/bin/python" "$here/check.py"
