#!/usr/bin/env bash
# Console on 1,000,000 ledger rows: seeds a fresh database with `finchgate dev seed-ledger`, starts a
# release `finchgate serve`, signs an operator in, and times console pages (median and p95 of ~50
# requests each), then runs the same SQL alone with EXPLAIN (ANALYZE, BUFFERS) as the application's
# role in the operator scope. Prints a Markdown report on stdout (progress on stderr).
#
#   benches/console/run.sh [TENANTS] [ROWS]      defaults: 1000 1000000
#   REUSE=1 benches/console/run.sh                measure an already seeded database again
#
# Needs: a release build (cargo build --release), PostgreSQL at TEST_DATABASE_URL's server
# (default postgres://postgres@127.0.0.1:5432), curl, psql, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
tenants=${1:-1000}
rows=${2:-1000000}
requests=${REQUESTS:-50}
bin=target/release/finchgate
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
server="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db=finchgate_console_bench
url="${server%/*}/$db"
port=${BENCH_PORT:-18480}
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
log() { printf '%s\n' "$*" >&2; }

export DATABASE_URL="$url"
if [ "${REUSE:-0}" != 1 ]; then
  log "== fresh database $db"
  psql "$server" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin" migrate >&2
  log "== seed: $tenants tenants, $rows ledger rows"
  seed_start=$(date +%s.%N)
  "$bin" dev seed-ledger --tenants "$tenants" --rows "$rows" >&2
  seed_end=$(date +%s.%N)
  echo "Seeded $tenants tenants and $rows ledger rows in $(python3 -c "print(f'{$seed_end - $seed_start:.1f}')") s (\`finchgate dev seed-ledger\`)."
fi
"$bin" migrate >&2
printf 'bench-operator-password-4711\n' | "$bin" operator create --email bench@finchgate.test --password-stdin >&2 || true
echo "Database: $(psql "$url" -At -c "SELECT count(*) FROM tenants") tenants, $(psql "$url" -At -c "SELECT count(*) FROM exchange_attempts") ledger rows ($(psql "$url" -At -c "SELECT count(*) FROM exchange_attempts WHERE outcome <> 'succeeded'") failures, $(psql "$url" -At -c "SELECT count(*) FROM exchange_attempts WHERE outcome <> 'succeeded' AND review_state <> 'resolved'") open); load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores."

export FINCHGATE_BIND="127.0.0.1:$port" FINCHGATE_PUBLIC_URL="http://127.0.0.1:$port"
FINCHGATE_MASTER_KEYS="bench:$(head -c 32 /dev/urandom | base64)"
FINCHGATE_SESSION_SECRET="$(head -c 64 /dev/urandom | base64 -w0)"
export FINCHGATE_MASTER_KEYS FINCHGATE_SESSION_SECRET RUST_LOG=warn
"$bin" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

jar="$work/cookies"
csrf=$(curl -fsS -c "$jar" -b "$jar" "http://127.0.0.1:$port/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
curl -fsS -o /dev/null -c "$jar" -b "$jar" -d "email=bench%40finchgate.test" \
  --data-urlencode "password=bench-operator-password-4711" --data-urlencode "csrf_token=$csrf" \
  "http://127.0.0.1:$port/login"

# A tenant with many failures, and a cursor for page 2 of the list.
slug=seed-0002
page1=$(curl -fsS -b "$jar" "http://127.0.0.1:$port/ops/exchanges")
next=$(printf '%s' "$page1" | python3 -c 'import sys,re,html; m=re.search(r"id=\"next-page\" href=\"([^\"]*)\"", sys.stdin.read()); print(html.unescape(m.group(1)) if m else "")')
cursor=${next#*cursor=}

# name|path
pages=(
  "list: failures, newest first|/ops/exchanges"
  "list: page 2 (keyset cursor)|$next"
  "filtered: tenant + category|/ops/exchanges?tenant=$slug&category=invalid_grant"
  "filtered: provider + review state open|/ops/exchanges?provider=gusto&review=open"
  "filtered: free text|/ops/exchanges?q=req_00"
  "tenants page (health of every tenant)|/ops/tenants"
  "tenant page (one tenant)|/ops/tenants/$slug"
  "groups view|/ops/exchanges?view=groups"
  "trend view (14 days, daily)|/ops/exchanges?view=trends"
)

stats() { python3 -c '
import sys, statistics
xs = sorted(float(x) * 1000 for x in sys.stdin.read().split())
p95 = xs[min(len(xs) - 1, int(round(0.95 * len(xs))) - 1)]
print(f"{statistics.median(xs):.1f} | {p95:.1f} | {xs[0]:.1f} | {xs[-1]:.1f}")'; }

echo
echo "| page | median ms | p95 ms | min ms | max ms | bytes |"
echo "|---|---:|---:|---:|---:|---:|"
for entry in "${pages[@]}"; do
  name=${entry%%|*}; path=${entry#*|}
  for _ in 1 2 3; do curl -fsS -o /dev/null -b "$jar" "http://127.0.0.1:$port$path"; done
  : >"$work/t"
  for _ in $(seq 1 "$requests"); do
    curl -fsS -o "$work/body" -b "$jar" -w '%{time_total}\n' "http://127.0.0.1:$port$path" >>"$work/t"
  done
  log "   $name: done"
  echo "| $name | $(stats <"$work/t") | $(wc -c <"$work/body") |"
done
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# The same SQL alone, as the application runs it: role finchgate_app, operator scope.
explain() {
  local title=$1 sql=$2
  echo
  echo "### $title"
  echo
  echo '```'
  psql "$url" -X -q -At <<SQL | grep -v '^$'
BEGIN;
SET LOCAL ROLE finchgate_app;
SELECT set_config('app.scope', 'operator', true) \\g /dev/null
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $sql;
ROLLBACK;
SQL
  echo '```'
}
# As src/console/ledger.rs builds them (LIST_SELECT … LIST_JOIN), with the values inlined.
cols="SELECT a.id, t.slug AS tenant_slug, a.stage, a.started_at, a.outcome, a.category, a.actor, a.provider_id, a.finch_status, a.finch_error_name, a.finch_code, a.message, a.finch_request_id, a.latency_ms, a.review_state, u.email AS reviewer, a.reviewed_at FROM (SELECT * FROM exchange_attempts a WHERE TRUE"
join=") a JOIN tenants t ON t.id = a.tenant_id LEFT JOIN users u ON u.id = a.reviewed_by ORDER BY a.started_at DESC, a.id DESC"
cursor_sql=$(python3 -c "
import base64, sys, datetime
raw = base64.urlsafe_b64decode('$cursor' + '=' * (-len('$cursor') % 4)).decode()
micros, uid = raw.split('.')
t = datetime.datetime.fromtimestamp(int(micros) / 1e6, datetime.timezone.utc)
print(f\"(a.started_at, a.id) < ('{t.isoformat()}', '{uid}')\")")
echo
echo "EXPLAIN (ANALYZE, BUFFERS) of the same queries, as role finchgate_app in the operator scope:"
explain "list: failures, newest first" "$cols AND a.outcome <> 'succeeded' ORDER BY a.started_at DESC, a.id DESC LIMIT 51 $join"
explain "list: page 2" "$cols AND a.outcome <> 'succeeded' AND $cursor_sql ORDER BY a.started_at DESC, a.id DESC LIMIT 51 $join"
explain "filtered: tenant + category" "$cols AND a.outcome <> 'succeeded' AND a.tenant_id = (SELECT id FROM tenants WHERE slug = '$slug') AND a.category = 'invalid_grant' ORDER BY a.started_at DESC, a.id DESC LIMIT 51 $join"
explain "filtered: provider + review state open" "$cols AND a.outcome <> 'succeeded' AND a.provider_id = 'gusto' AND a.review_state = 'open' ORDER BY a.started_at DESC, a.id DESC LIMIT 51 $join"
explain "filtered: free text" "$cols AND a.outcome <> 'succeeded' AND (a.message ILIKE '%req\\_00%' OR a.finch_request_id ILIKE '%req\\_00%') ORDER BY a.started_at DESC, a.id DESC LIMIT 51 $join"
explain "tenants page" "SELECT * FROM (SELECT t.id, t.slug, t.name, t.status, t.created_at,
   (SELECT s.started_at FROM exchange_attempts s WHERE s.tenant_id = t.id AND s.outcome = 'succeeded' ORDER BY s.started_at DESC LIMIT 1) AS last_success,
   coalesce(r.attempts_24h, 0) AS attempts_24h, coalesce(r.failures_24h, 0) AS failures_24h,
   coalesce(r.attempts_7d, 0) AS attempts_7d, coalesce(r.failures_7d, 0) AS failures_7d,
   coalesce(o.open_failures, 0) AS open_failures,
   coalesce(c.active, 0) AS connections_active, coalesce(c.reauth, 0) AS connections_reauth,
   coalesce(c.disconnected, 0) AS connections_disconnected, coalesce(c.other, 0) AS connections_other
 FROM tenants t
 LEFT JOIN (SELECT a.tenant_id, count(*) FILTER (WHERE a.started_at >= now() - interval '24 hours') AS attempts_24h,
        count(*) FILTER (WHERE a.started_at >= now() - interval '24 hours' AND a.outcome <> 'succeeded') AS failures_24h,
        count(*) AS attempts_7d, count(*) FILTER (WHERE a.outcome <> 'succeeded') AS failures_7d
      FROM exchange_attempts a WHERE a.outcome IS NOT NULL AND a.started_at >= now() - interval '7 days' GROUP BY a.tenant_id) r ON r.tenant_id = t.id
 LEFT JOIN (SELECT a.tenant_id, count(*) AS open_failures FROM exchange_attempts a
      WHERE a.outcome <> 'succeeded' AND a.review_state <> 'resolved' GROUP BY a.tenant_id) o ON o.tenant_id = t.id
 LEFT JOIN (SELECT n.tenant_id, count(*) FILTER (WHERE n.status = 'active') AS active,
        count(*) FILTER (WHERE n.status = 'reauth_required') AS reauth,
        count(*) FILTER (WHERE n.status = 'disconnected') AS disconnected,
        count(*) FILTER (WHERE n.status NOT IN ('active', 'reauth_required', 'disconnected')) AS other
      FROM connections n WHERE TRUE GROUP BY n.tenant_id) c ON c.tenant_id = t.id WHERE TRUE) h
 ORDER BY failures_24h::float8 / nullif(attempts_24h, 0) DESC NULLS LAST, open_failures DESC,
   failures_7d::float8 / nullif(attempts_7d, 0) DESC NULLS LAST, slug"
