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
    cargo build --release -q -p event_loop_server --bin loadgen
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

run_wrk() {
    start_server
    rate=$(timeout $((DURATION + 20)) wrk -t"$THREADS" -c"$CLIENTS" -d"${DURATION}s" "http://$addr/ping" \
        | awk '/^Requests\/sec/ { print $2 }')
    stop_server
    wrk_rates+=("$rate")
}
run_loadgen() {
    start_server
    rate=$(timeout $((DURATION + 20)) target/release/loadgen --addr "$addr" --http --clients "$CLIENTS" \
        --threads "$THREADS" --duration "$DURATION" | awk '{ print $2 }')
    stop_server
    loadgen_rates+=("$rate")
}

# Each tool goes first in every other round, so neither always meets the
# machine in the state the other left it.
wrk_rates=() loadgen_rates=()
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then run_wrk; run_loadgen; else run_loadgen; run_wrk; fi
    echo "round $round: wrk $(printf '%.0f' "${wrk_rates[-1]}") req/s, loadgen $(printf '%.0f' "${loadgen_rates[-1]}") req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
w=$(median "${wrk_rates[@]}")
l=$(median "${loadgen_rates[@]}")
awk -v w="$w" -v l="$l" 'BEGIN { printf "median: wrk %.0f, loadgen %.0f req/s, loadgen/wrk %.2f\n", w, l, l / w }'
