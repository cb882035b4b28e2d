#!/usr/bin/env bash
# Re-runs the benchmarks of BENCHMARKS.md: builds release binaries, starts keyguard on
# loopback (minimal devnet, slashing protection on, synchronous=FULL) and runs
# keyguard-load in each mode, then measures start-up with each key source. Every load
# result is printed with the raw blst signing rate measured in the same run.
#
# Usage: bash interop-tests/scripts/bench.sh [OUT_DIR] [SECTION...]
#   SECTION: load, startup (default: both), flood (the signing queue under a flood).
# Environment:
#   KG_CPUS    CPUs keyguard is pinned to (taskset list, default 0 on machines with 2+ CPUs)
#   LOAD_CPUS  CPUs keyguard-load runs on (default: the other CPUs)
#   Set KG_CPUS=all to run both unpinned on every CPU (the load generator then competes
#   with the signer for the same cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/bench-results}"
shift || true
sections="${*:-load startup}"
mkdir -p "$out"
cargo build --release -p keyguard -p interop-tests \
  --bin keyguard --bin keyguard-load --bin keyguard-keystores
kg=target/release/keyguard
load=target/release/keyguard-load
port=19000
url="http://127.0.0.1:$port"
ncpu=$(nproc)

# CPU placement: the signer on KG_CPUS, the client on LOAD_CPUS, so the client's HTTP and
# JSON work does not eat the signer's cores (in production it runs on another host). raw
# blst is measured by keyguard-load on KG_CPUS, so the ratio compares like with like.
kg_cpus="${KG_CPUS:-$([ "$ncpu" -ge 2 ] && echo 0 || echo all)}"
if [ "$kg_cpus" = all ]; then
  kg_pin=(); load_pin=(); raw_cpus=(); signing_threads=0
else
  load_cpus="${LOAD_CPUS:-$(seq -s, 1 $((ncpu - 1)))}"
  kg_pin=(taskset -c "$kg_cpus"); load_pin=(taskset -c "$load_cpus")
  raw_cpus=(--raw-cpus "$kg_cpus")
  signing_threads=$(python3 -c "
s='$kg_cpus'; n=0
for part in s.split(','):
    a,_,b=part.partition('-'); n += (int(b)-int(a)+1) if b else 1
print(n)")
fi
echo "keyguard on CPUs: $kg_cpus; keyguard-load on: ${load_cpus:-all}; signing threads: $signing_threads"

data=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT

wait_healthy() { # TIMEOUT_S
  for _ in $(seq 1 $(($1 * 20))); do
    curl -sf "$url/healthcheck" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "keyguard exited" >&2; exit 1; }
    sleep 0.05
  done
  echo "keyguard did not become healthy" >&2; exit 1
}
start() { # start DATA_DIR KEY_FLAGS...
  local dir=$1; shift
  "${kg_pin[@]}" "$kg" run --network config/networks/devnet-minimal.yaml \
    --data-dir "$dir" --listen "127.0.0.1:$port" --log-level warn \
    --signing-threads "$signing_threads" "$@" &
  pid=$!
  wait_healthy 600
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
drive() { "${load_pin[@]}" "$load" --url "$url" "${raw_cpus[@]}" "$@"; }

if [[ " $sections " == *" load "* ]]; then
  echo "== sustained attestations, own root per request (closed loop)"
  start "$data/a" --interop-keys 4096
  drive --start-epoch 1000 --json "$out/closed-distinct.json" closed --concurrency 64 --requests 30000
  echo "== sustained attestations, one shared root per slot (closed loop)"
  drive --shared-roots --start-epoch 2000 --json "$out/closed-shared.json" closed --concurrency 64 --requests 30000
  stop

  echo "== burst: 3,125 same-slot attestations (one slot of 100,000 validators)"
  start "$data/b" --interop-keys 3125
  drive --shared-roots --start-epoch 1000 --json "$out/burst-shared.json" burst --size 3125
  drive --start-epoch 2000 --json "$out/burst-distinct.json" burst --size 3125
  stop

  echo "== latency at half of saturation (open loop)"
  start "$data/c" --interop-keys 4096
  for kind in distinct shared; do
    flag=(); [ "$kind" = shared ] && flag=(--shared-roots)
    sat=$(python3 -c "import json;print(json.load(open('$out/closed-$kind.json'))['throughput_per_s'])")
    rate=$(python3 -c "print(round($sat/2))")
    epoch=$([ "$kind" = shared ] && echo 4000 || echo 3000)
    drive "${flag[@]}" --start-epoch "$epoch" --json "$out/open-half-$kind.json" open --rate "$rate" --seconds 10
  done
  stop
fi

if [[ " $sections " == *" flood "* ]]; then
  # The victim's attestations at a fixed rate, alone and then while a second client
  # (connecting from 127.0.0.2) keeps 512 requests in flight; then the same with the
  # queue's limits lifted, to show what the queue buys, and the unknown-key flood with the
  # tarpit of cheap refusals off, to show what the tarpit buys. The foreign-Host flood is
  # refused (403) by the access layer, before the pipeline, and tarpitted per address.
  echo "== flood: RANDAO reveals, unknown keys, foreign Host, duties for other keys (default queue)"
  start "$data/f" --interop-keys 1024
  drive --start-epoch 1000 --json "$out/flood-randao.json" flood --rate 200 --seconds 10 --flood randao
  drive --start-epoch 2000 --json "$out/flood-unknown.json" flood --rate 200 --seconds 10 --flood unknown-keys
  drive --start-epoch 5000 --json "$out/flood-foreign-host.json" flood --rate 200 --seconds 10 --flood foreign-host
  drive --start-epoch 8000 --json "$out/flood-attestations.json" flood --rate 200 --seconds 10 --flood attestations
  stop
  echo "== flood: unknown keys and foreign Host (403), cheap-refusal tarpit off (what the tarpit buys)"
  start "$data/h" --interop-keys 1024 --queue-refusal-rate 0
  drive --start-epoch 2000 --json "$out/flood-unknown-no-tarpit.json" flood --rate 200 --seconds 10 --flood unknown-keys
  drive --start-epoch 5000 --json "$out/flood-foreign-host-no-tarpit.json" flood --rate 200 --seconds 10 --flood foreign-host
  stop
  echo "== flood: RANDAO reveals, queue limits lifted"
  start "$data/g" --interop-keys 1024 --queue-concurrency 1000000 --queue-background-concurrency 1000000
  drive --start-epoch 1000 --json "$out/flood-randao-unlimited.json" flood --rate 200 --seconds 10 --flood randao
  stop
fi

if [[ " $sections " == *" startup "* ]]; then
  # Start-up runs unpinned: key loading uses every core.
  kg_pin=(); signing_threads=0
  timed_start() { # NAME KEY_FLAGS...
    local name=$1; shift
    local t0 t1 rss
    t0=$(date +%s.%N); start "$data/startup-$name" "$@"; t1=$(date +%s.%N)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    stop
    python3 -c "print('$name: healthy after %.2f s, RSS %d kB' % ($t1 - $t0, $rss))" | tee -a "$out/startup.txt"
  }
  : > "$out/startup.txt"
  echo "== start-up: keystores (standard KDF cost; see keyguard-keystores)"
  "$(dirname "$kg")/keyguard-keystores" --count 10000 --kdf pbkdf2 --out "$data/pbkdf2"
  "$(dirname "$kg")/keyguard-keystores" --count 100 --kdf scrypt --out "$data/scrypt"
  timed_start interop-10000 --interop-keys 10000
  timed_start pbkdf2-10000 --keystores "$data/pbkdf2" --passwords "$data/pbkdf2.password"
  timed_start scrypt-100 --keystores "$data/scrypt" --passwords "$data/scrypt.password"

  module=/usr/lib/softhsm/libsofthsm2.so
  if [ -f "$module" ] && command -v softhsm2-util >/dev/null; then
    echo "== start-up: 10,000 keys sealed by SoftHSM"
    mkdir -p "$data/hsm/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$data/hsm/tokens" > "$data/hsm/softhsm2.conf"
    export SOFTHSM2_CONF="$data/hsm/softhsm2.conf"
    softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
    echo 1234 > "$data/hsm/pin"
    hsm=(--hsm-module "$module" --hsm-token-label bench --hsm-pin-file "$data/hsm/pin")
    "$kg" hsm init-kek "${hsm[@]}" >/dev/null
    t0=$(date +%s.%N)
    "$kg" keys generate --count 10000 --out "$data/sealed" --network config/networks/devnet-minimal.yaml "${hsm[@]}" >/dev/null
    t1=$(date +%s.%N)
    python3 -c "print('generate+seal 10000 keys in the HSM: %.2f s' % ($t1 - $t0))" | tee -a "$out/startup.txt"
    timed_start sealed-10000 --sealed-keys "$data/sealed" "${hsm[@]}"
  else
    echo "SoftHSM not installed: skipping the sealed-key start-up" | tee -a "$out/startup.txt"
  fi
fi
echo "results in $out"
