#!/usr/bin/env bash
# Same-run A/B of two keyguard binaries on the sign path: interleaved pairs of closed-loop
# attestation loads (own root per request, then one shared root per slot), each signer
# pinned to the same CPU, the load generator on the others. Prints one line per run and
# the ratio B/A per pair; ratios are what to report (these machines are noisy).
#
# Usage: bash interop-tests/scripts/bench-ab.sh A_BIN B_BIN [PAIRS] [REQUESTS]
#   A_BIN, B_BIN  release keyguard binaries (e.g. the base commit's and HEAD's)
#   PAIRS         interleaved A/B pairs (default 3); REQUESTS per load (default 10000)
# Needs target/release/keyguard-load (cargo build --release -p interop-tests --bin keyguard-load).
set -euo pipefail
cd "$(dirname "$0")/../.."
a_bin=$1 b_bin=$2 pairs=${3:-3} requests=${4:-10000}
load=target/release/keyguard-load
port=19100 url="http://127.0.0.1:19100"
ncpu=$(nproc)
kg_pin=(taskset -c 0); load_pin=(taskset -c "1-$((ncpu - 1))")
[ "$ncpu" -ge 2 ] || { kg_pin=(); load_pin=(); }
pid= data=$(mktemp -d)
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT

run_one() { # LABEL BIN RUN_INDEX -> prints "LABEL kind throughput ratio"
  local label=$1 bin=$2 i=$3 dir="$data/$1-$3"
  "${kg_pin[@]}" "$bin" run --network config/networks/devnet-minimal.yaml --data-dir "$dir" \
    --listen "127.0.0.1:$port" --log-level warn --signing-threads 1 --interop-keys 1024 &
  pid=$!
  for _ in $(seq 1 1200); do curl -sf "$url/healthcheck" >/dev/null 2>&1 && break; sleep 0.05; done
  for kind in own shared; do
    local flag=() epoch=$((1000 + i * 100))
    [ "$kind" = shared ] && { flag=(--shared-roots); epoch=$((epoch + 50)); }
    "${load_pin[@]}" "$load" --url "$url" --raw-cpus 0 "${flag[@]}" --start-epoch "$epoch" \
      --json "$dir-$kind.json" closed --concurrency 64 --requests "$requests" >/dev/null
    python3 -c "
import json; r = json.load(open('$dir-$kind.json'))
print('$label', '$kind', round(r['throughput_per_s']), round(r['throughput_ratio_to_raw'], 3))"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

for i in $(seq 1 "$pairs"); do
  run_one A "$a_bin" "$i" | tee -a "$data/results"
  run_one B "$b_bin" "$i" | tee -a "$data/results"
done
python3 - "$data/results" <<'EOF'
import sys, collections
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
runs = collections.defaultdict(list)
for label, kind, rate, *_ in rows:
    runs[(label, kind)].append(float(rate))
for kind in ("own", "shared"):
    ratios = [b / a for a, b in zip(runs[("A", kind)], runs[("B", kind)])]
    print(f"{kind} roots: B/A per pair", " ".join(f"{r:.3f}" for r in ratios),
          f"(mean {sum(ratios) / len(ratios):.3f})")
EOF
