#!/usr/bin/env bash
# Starts `finchgate sandbox` on a free loopback port with a throwaway app, runs the official Finch
# Python SDK check against it (run.sh), and stops the emulator. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --locked --bin finchgate
client_id="$(python3 -c 'import uuid; print(uuid.uuid4())')"
client_secret="sdk-check-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="target/sdk-check-sandbox.log"
FINCHGATE_SANDBOX_APPS="$client_id:$client_secret" target/debug/finchgate sandbox --bind "127.0.0.1:$port" >"$log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.2
done
SANDBOX_URL="http://127.0.0.1:$port" SANDBOX_CLIENT_ID="$client_id" SANDBOX_CLIENT_SECRET="$client_secret" \
  scripts/sdk_check/run.sh
