#!/usr/bin/env bash
# Does the live view slow the request path? (issue 16)
#
#   OLD=/path/to/old/target/release scripts/live_cost.sh
#
# Builds of the servers from before the live view (OLD, a target/release
# built from an older commit in a separate worktree or directory) against
# this tree's (target/release), alternating run by run, a fresh server for
# each: PING from 50 clients and `DB {i} 10` from 1,000, on the pool (a
# worker per client) and on one loop. The new servers run with
# --stats-addr while a reader fetches /stats.json every second, so the
# figure includes sampling. Prints each run's req/s and, per case, the
# medians and new/old, and the same for the server's CPU time per answer.
# Each build goes first in every other round.
#
# Environment: ROUNDS=5, DURATION=3 (seconds a run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
OLD=${OLD:?set OLD to the target/release of the old build}
NEW=target/release

server= poller=
stop_server() {
    [[ -n $poller ]] && { kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; }
    [[ -n $server ]] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    server= poller=
}
trap stop_server EXIT
# start_server DIR BINARY FLAGS...: sets addr (and stats for a new build).
start_server() {
    local dir=$1 out
    shift
    out=$(mktemp)
    "$dir/$@" --addr 127.0.0.1:0 >"$out" 2>/dev/null &
    server=$!
    addr= stats=
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$out")
        stats=$(sed -n 's|^live view on http://\(.*\)/live$|\1|p' "$out")
        [[ -n $addr && ( $dir == "$OLD" || -n $stats ) ]] && break
        sleep 0.05
    done
    rm -f "$out"
    [[ -n $addr ]] || { echo "server did not start" >&2; exit 1; }
    if [[ -n $stats ]]; then
        (while sleep 1; do curl -s "http://$stats/stats.json" >/dev/null || true; done) &
        poller=$!
    fi
}

declare -A rates costs
run() { # run CASE CLIENTS REQUEST BINARY FLAGS...
    local name=$1 clients=$2 request=$3 build dir extra rate
    shift 3
    for build in $order; do
        if [[ $build == old ]]; then dir=$OLD extra=(); else dir=$NEW extra=(--stats-addr 127.0.0.1:0); fi
        start_server "$dir" "$@" "${extra[@]}"
        line=$(target/release/loadgen --addr "$addr" --clients "$clients" --request "$request" \
            --duration "$DURATION")
        rate=$(awk '{ print $2 }' <<<"$line")
        answered=$(sed -n 's/.* answered \([0-9]*\).*/\1/p' <<<"$line")
        # The server's user + system CPU (fields 14, 15 of /proc/PID/stat,
        # in clock ticks) per answer: on a shared machine the rate is
        # noisy, the cost of a request much less so.
        ticks=$(awk '{ print $14 + $15 }' "/proc/$server/stat")
        cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$answered" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        stop_server
        rates[$name,$build]+="$rate "
        costs[$name,$build]+="$cpu "
        echo "$name $build: $rate req/s, server CPU $cpu us/request"
    done
}

cases=("pool ping" "pool db" "loop ping" "loop db")
for round in $(seq "$ROUNDS"); do
    # Each build goes first in every other round: a machine warming up or
    # a neighbour's load then favours neither.
    if ((round % 2)); then order="old new"; else order="new old"; fi
    echo "round $round"
    run "pool ping" 50 PING thread_pool_server --workers 50
    run "pool db" 1000 'DB {i} 10' thread_pool_server --workers 1000 --queue 100
    run "loop ping" 50 PING event_loop_server
    run "loop db" 1000 'DB {i} 10' event_loop_server
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for name in "${cases[@]}"; do
    # shellcheck disable=SC2086 # the rates are a space-separated list
    old=$(median ${rates[$name,old]}) new=$(median ${rates[$name,new]})
    # shellcheck disable=SC2086
    old_cpu=$(median ${costs[$name,old]}) new_cpu=$(median ${costs[$name,new]})
    awk -v c="$name" -v o="$old" -v n="$new" -v oc="$old_cpu" -v nc="$new_cpu" \
        'BEGIN { printf "%-10s median old %.0f, new %.0f req/s, new/old %.3f; CPU old %.2f, new %.2f us/request, new/old %.3f\n", c, o, n, n / o, oc, nc, nc / oc }'
done
