#!/usr/bin/env bash
# SQLite vs PostgreSQL slashing protection, one instance, and two instances on one
# PostgreSQL (aggregate): closed-loop attestation throughput and latency, own root per
# request and one shared root per slot. Numbers in BENCHMARKS.md ("Several instances on
# PostgreSQL").
#
# Usage: bash interop-tests/scripts/bench-postgres.sh [OUT_DIR]
# Environment: KEYS (interop keys, default 2048), REQUESTS (per run, default 20000),
# CONCURRENCY (default 64), KG_BIN and LOAD_BIN (prebuilt binaries; skips the build),
# RAW_SECONDS (raw blst measurement, default 4). Everything runs unpinned on every CPU:
# the signers, PostgreSQL and the load generator share the machine's cores.
#
# PostgreSQL: a throw-away cluster (Debian `postgresql` 15 binaries) in a temporary
# directory, fsync on, synchronous_commit on (the defaults), run as user `postgres` when
# this script runs as root (PostgreSQL refuses to run as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/bench-results/postgres}"
keys="${KEYS:-2048}"
requests="${REQUESTS:-20000}"
concurrency="${CONCURRENCY:-64}"
mkdir -p "$out"
if [ -z "${KG_BIN:-}" ]; then
  cargo build --release -p keyguard -p interop-tests --bin keyguard --bin keyguard-load
fi
kg="${KG_BIN:-target/release/keyguard}"
load="${LOAD_BIN:-target/release/keyguard-load}"
pgbin=/usr/lib/postgresql/15/bin

work=$(mktemp -d)
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

chmod 755 "$work"   # the postgres user must reach its cluster directory
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown -R postgres: "$work/pg"
pgport=15432
as_pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atc "$1"; }
echo "PostgreSQL $(psql 'SHOW server_version'), synchronous_commit=$(psql 'SHOW synchronous_commit'), fsync=$(psql 'SHOW fsync')"

start() { # start PORT DATA_DIR DATABASE
  "$kg" run --network config/networks/devnet-minimal.yaml --interop-keys "$keys" \
    --data-dir "$2" --slashing-database "$3" --listen "127.0.0.1:$1" --log-level warn &
  pids+=($!)
  for _ in $(seq 1 6000); do
    curl -sf "http://127.0.0.1:$1/healthcheck" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "keyguard on port $1 did not become healthy" >&2; exit 1
}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}
drive() { # NAME URLS [FLAGS...]
  local name=$1 urls=$2; shift 2
  echo "== $name"
  "$load" --url "$urls" --raw-seconds "${RAW_SECONDS:-4}" "$@" --json "$out/$name.json" closed --concurrency "$concurrency" --requests "$requests"
}
run_pair() { # NAME URLS
  drive "$1-own" "$2" --start-epoch 1000
  drive "$1-shared" "$2" --shared-roots --start-epoch 3000
}

start 19101 "$work/sqlite" "$work/sqlite/slashing-protection.sqlite"
run_pair sqlite-1 http://127.0.0.1:19101
stop_all

psql "CREATE DATABASE bench1" >/dev/null
start 19111 "$work/pg1" "postgresql://postgres@127.0.0.1:$pgport/bench1"
run_pair postgres-1 http://127.0.0.1:19111
stop_all

psql "CREATE DATABASE bench2" >/dev/null
start 19121 "$work/pg2a" "postgresql://postgres@127.0.0.1:$pgport/bench2"
start 19122 "$work/pg2b" "postgresql://postgres@127.0.0.1:$pgport/bench2"
run_pair postgres-2 http://127.0.0.1:19121,http://127.0.0.1:19122
stop_all

python3 - "$out" <<'EOF'
import json, sys, os
out = sys.argv[1]
print(f"{'run':<20} {'ok':>7} {'err':>5} {'sign/s':>8} {'x raw':>6} {'p50 ms':>8} {'p99 ms':>8}")
for name in ["sqlite-1-own", "sqlite-1-shared", "postgres-1-own", "postgres-1-shared",
             "postgres-2-own", "postgres-2-shared"]:
    r = json.load(open(os.path.join(out, name + ".json")))
    print(f"{name:<20} {r['ok']:>7} {r['errors']:>5} {r['throughput_per_s']:>8.0f} "
          f"{r['throughput_per_s'] / r['raw_blst_sign_per_s']:>6.2f} "
          f"{r['latency_ms']['p50']:>8.2f} {r['latency_ms']['p99']:>8.2f}")
EOF
