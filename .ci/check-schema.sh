#!/usr/bin/env bash
# Regenerates src/db/schema.rs from the migrations with diesel_cli and fails if it differs from the
# committed file: the schema is generated, never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v diesel >/dev/null || ! diesel --version | grep -q '2\.3'; then
  cargo install diesel_cli --version '2.3.*' --no-default-features --features postgres --locked
fi
db="finchgate_schema_check_$$"
server="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
url="${server%/*}/$db"
psql "$server" -q -c "CREATE DATABASE $db"
trap 'psql "$server" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
cp src/db/schema.rs "target/schema.committed.rs"
DATABASE_URL="$url" diesel migration run --migration-dir migrations >/dev/null
DATABASE_URL="$url" diesel print-schema > target/schema.generated.rs
if ! diff -u target/schema.committed.rs target/schema.generated.rs; then
  echo "src/db/schema.rs does not match the migrations: run 'diesel print-schema > src/db/schema.rs' against a migrated database" >&2
  cp target/schema.committed.rs src/db/schema.rs
  exit 1
fi
cp target/schema.committed.rs src/db/schema.rs
echo "schema.rs matches the migrations"
