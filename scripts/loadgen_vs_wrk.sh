#!/usr/bin/env bash
# Is our load generator as strong as a load tool nobody here wrote?
#
#   scripts/loadgen_vs_wrk.sh
#
# Against `event_loop_server --loops 2`, GET /ping over HTTP/1.1 keep-alive
# from 64 connections: `wrk -t2 -c64` and `loadgen --threads 2 --http
# --clients 64`, alternating run by run (ROUNDS times, default 3), a fresh
# server for every run. Prints each run's req/s and the ratio of the
# medians (loadgen / wrk). Each tool goes first in every other round. Needs `wrk` (Debian: apt-get install wrk).
#
# Environment: DURATION=5 (seconds a run), ROUNDS=3, THREADS=2, CLIENTS=64,
# LOOPS=2, BUILD=0 to skip the release build.
#
# On a machine where the server and the generator share the cores, both
# tools share them with the server too: the ratio compares the tools under
# the same handicap, not the server's speed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CLIENTS=${CLIENTS:-64}
LOOPS=${LOOPS:-2}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
if [[ ${BUILD:-1} != 0 ]]; then
    cargo build --release -q -p event_loop_server && cargo build --release -q --bin loadgen
fi

server=
stop_server() {
    [[ -n $server ]] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    server=
}
trap stop_server EXIT
start_server() {
    local out
    out=$(mktemp)
    target/release/event_loop_server --addr 127.0.0.1:0 --loops "$LOOPS" >"$out" 2>/dev/null &
    server=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$out")
        [[ -n $addr ]] && break
        sleep 0.05
    done
    rm -f "$out"
    [[ -n $addr ]] || { echo "server did not start" >&2; exit 1; }
}

# Each run: the tool's req/s, and its own CPU time (user + system, from
# /usr/bin/time) per request in microseconds: on a machine shared with
# other work the rate is noisy, the CPU a request costs the tool is not.
cpu_log=$(mktemp)
run_wrk() {
    start_server
    out=$(timeout $((DURATION + 20)) /usr/bin/time -f 'cpu %U %S' -o "$cpu_log" \
        wrk -t"$THREADS" -c"$CLIENTS" -d"${DURATION}s" "http://$addr/ping")
    stop_server
    rate=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    wrk_rates+=("$rate")
    wrk_cpu+=("$(awk -v r="$rate" -v d="$DURATION" '{ printf "%.2f", ($2 + $3) * 1e6 / (r * d) }' "$cpu_log")")
}
run_loadgen() {
    start_server
    out=$(timeout $((DURATION + 20)) /usr/bin/time -f 'cpu %U %S' -o "$cpu_log" \
        target/release/loadgen --addr "$addr" --http --clients "$CLIENTS" \
        --threads "$THREADS" --duration "$DURATION")
    stop_server
    rate=$(awk '{ print $2 }' <<<"$out")
    loadgen_rates+=("$rate")
    loadgen_cpu+=("$(awk -v r="$rate" -v d="$DURATION" '{ printf "%.2f", ($2 + $3) * 1e6 / (r * d) }' "$cpu_log")")
}

# Each tool goes first in every other round, so neither always meets the
# machine in the state the other left it.
wrk_rates=() loadgen_rates=() wrk_cpu=() loadgen_cpu=()
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then run_wrk; run_loadgen; else run_loadgen; run_wrk; fi
    echo "round $round: wrk $(printf '%.0f' "${wrk_rates[-1]}") req/s (${wrk_cpu[-1]} us CPU/req)," \
        "loadgen $(printf '%.0f' "${loadgen_rates[-1]}") req/s (${loadgen_cpu[-1]} us CPU/req)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
w=$(median "${wrk_rates[@]}")
l=$(median "${loadgen_rates[@]}")
awk -v w="$w" -v l="$l" -v wc="$(median "${wrk_cpu[@]}")" -v lc="$(median "${loadgen_cpu[@]}")" \
    'BEGIN { printf "median: wrk %.0f, loadgen %.0f req/s, loadgen/wrk %.2f; CPU per request: wrk %.2f us, loadgen %.2f us\n", w, l, l / w, wc, lc }'
