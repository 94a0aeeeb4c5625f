#!/usr/bin/env bash
# Validates the tenant API's OpenAPI 3.1 document (what `finchgate openapi` prints, the same as
# GET /api/v1/openapi.json serves) with the Python `openapi-spec-validator`, in a virtualenv.
#
# Usage: scripts/openapi_check/run.sh [FINCHGATE_BINARY]   (default: target/debug/finchgate)
# The virtualenv lives in $OPENAPI_VENV (default: target/openapi-venv) and is reused between runs.
set -euo pipefail

VALIDATOR_VERSION="0.9.0" # openapi-spec-validator, pinned

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-$root/target/debug/finchgate}"
if [ ! -x "$binary" ]; then
    (cd "$root" && cargo build --locked --bin finchgate)
fi

venv="${OPENAPI_VENV:-$root/target/openapi-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-spec-validator') != '$VALIDATOR_VERSION')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi

document="$root/target/openapi.json"
"$binary" openapi > "$document"
"$venv/bin/python" - "$document" <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.versions.shortcuts import get_spec_version

path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
version = get_spec_version(spec)
assert spec["openapi"].startswith("3.1"), f"not OpenAPI 3.1: {spec['openapi']}"
validate(spec)
print(f"{path}: a valid {version} document, {len(spec['paths'])} paths, {len(spec['components']['schemas'])} schemas")
PY
