#!/usr/bin/env bash
# Re-runs the load benchmarks of BENCHMARKS.md: builds release binaries, starts keyguard
# on loopback with N interop keys and slashing protection on (synchronous=FULL), and runs
# keyguard-load in each mode. Every result is printed with the raw blst signing rate
# measured in the same run. Usage: bash interop-tests/scripts/bench.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/bench-results}"
mkdir -p "$out"
cargo build --release -p keyguard -p interop-tests --bin keyguard --bin keyguard-load
kg=target/release/keyguard
load=target/release/keyguard-load
port=19000
url="http://127.0.0.1:$port"

start() { # start N_KEYS DATA_DIR
  "$kg" run --network config/networks/devnet-minimal.yaml --interop-keys "$1" \
    --data-dir "$2" --listen "127.0.0.1:$port" --log-level warn &
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf "$url/healthcheck" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "keyguard did not become healthy" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

echo "== start-up and memory: 10,000 interop keys"
t0=$(date +%s.%N); start 10000 "$data/rss"; t1=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "healthy after $(python3 -c "print(round($t1 - $t0, 2))") s; RSS ${rss_kb} kB" | tee "$out/startup-rss.txt"
stop

echo "== sustained attestations, own root per request (closed loop)"
start 4096 "$data/a"
"$load" --url "$url" --start-epoch 1000 --json "$out/closed-distinct.json" closed --concurrency 64 --requests 30000
echo "== sustained attestations, one shared root per epoch (closed loop)"
"$load" --url "$url" --shared-roots --start-epoch 2000 --json "$out/closed-shared.json" closed --concurrency 64 --requests 30000
stop

echo "== burst: 3,125 same-slot attestations (one slot of 100,000 validators)"
start 3125 "$data/b"
"$load" --url "$url" --shared-roots --start-epoch 1000 --json "$out/burst-shared.json" burst --size 3125
"$load" --url "$url" --start-epoch 2000 --json "$out/burst-distinct.json" burst --size 3125
stop

echo "== latency at about half of saturation (open loop)"
start 4096 "$data/c"
sat=$(python3 -c "import json;print(json.load(open('$out/closed-distinct.json'))['throughput_per_s'])")
rate=$(python3 -c "print(round($sat/2))")
"$load" --url "$url" --start-epoch 1000 --json "$out/open-half.json" open --rate "$rate" --seconds 10
stop
echo "results in $out"
