#!/usr/bin/env bash
# Our event loop side by side with the tokio/hyper baselines.
#
#   scripts/side_by_side.sh
#
# Builds (release) the workspace's binaries and baselines/, then runs each
# comparison RUNS times (default 3), alternating the servers run by run, a
# fresh server for every run, and prints the median req/s and p99 of each
# configuration with its ratio to the first one of its group.
#
# Environment:
#   DURATION=5      seconds of load per run
#   RUNS=3          runs per configuration (the median is reported)
#   RUN_TIMEOUT=    the most one load run may take (default 2*DURATION+30 s)
#   LOADGEN=target/release/loadgen   the load generator (its CLI:
#                   --addr --clients --request --duration [--http] --json)
#   BUILD=0         skip the builds
#   ONLY="1 3"      run only these groups (numbers as printed)
#   KEEP=DIR        keep every run's output in DIR (default: a temp dir)
#
# Measuring tool only: 127.0.0.1, every run bounded, every server it started
# is killed on exit. The load generator shares the machine's cores with
# the server: compare rows of one run, not with other machines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-$((2 * ${DURATION%.*} + 30))}
LOADGEN=${LOADGEN:-$root/target/release/loadgen}
BUILD=${BUILD:-1}
ONLY=${ONLY:-}
ELS=$root/target/release/event_loop_server
TOKIO=$root/baselines/target/release/tokio_line
HYPER=$root/baselines/target/release/hyper_http

results=${KEEP:-$(mktemp -d)}
mkdir -p "$results"
: >"$results/runs.tsv"

servers=()
cleanup() {
    local pid
    for pid in "${servers[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${servers[@]}"; do
        timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    servers=()
    [[ -n ${KEEP:-} ]] || rm -rf "$results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Thousands of client sockets and as many server ones.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 12000 )); then
    echo "warning: open-file limit $(ulimit -n); the 5000-client runs need about 10100" >&2
fi

if [[ $BUILD == 1 ]]; then
    echo "building (release)..." >&2
    timeout 1800 cargo build --release --workspace --bins --quiet
    timeout 1800 cargo build --release --manifest-path baselines/Cargo.toml --quiet
fi
for bin in "$ELS" "$TOKIO" "$HYPER" "$LOADGEN"; do
    [[ -x $bin ]] || { echo "missing $bin" >&2; exit 1; }
done

# start_server LOG CMD...: starts a server on port 0, waits for its
# `listening on ADDR` line, sets $server_pid and $server_addr.
start_server() {
    local log=$1 line=
    shift
    "$@" --addr 127.0.0.1:0 >"$log" 2>&1 &
    server_pid=$!
    servers+=("$server_pid")
    for _ in $(seq 100); do
        line=$(head -n1 "$log" 2>/dev/null || true)
        [[ $line == "listening on "* ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $line != "listening on "* ]]; then
        echo "server did not start: $*" >&2
        cat "$log" >&2
        return 1
    fi
    server_addr=${line#listening on }
}

stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    timeout 10 tail --pid="$server_pid" -f /dev/null 2>/dev/null || kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    local keep=() pid
    for pid in "${servers[@]}"; do [[ $pid == "$server_pid" ]] || keep+=("$pid"); done
    servers=("${keep[@]}")
}

# One configuration: its group, label, server command (words; the --addr
# is added) and load arguments (a shell-quoted string; --addr, --duration
# and --json are added). Each group's first configuration is the one the
# others are divided by.
cfg_group=() cfg_label=() cfg_server=() cfg_load=()
config() { cfg_group+=("$1"); cfg_label+=("$2"); cfg_server+=("$3"); cfg_load+=("$4"); }
group_titles=()

group_titles[1]="DB {i} 10, 1000 clients, one thread"
config 1 "event_loop_server" "$ELS" "--clients 1000 --request 'DB {i} 10'"
config 1 "tokio_line current_thread" "$TOKIO --flavor current" "--clients 1000 --request 'DB {i} 10'"
group_titles[2]="DB {i} 10, 5000 clients, one thread"
config 2 "event_loop_server" "$ELS" "--clients 5000 --request 'DB {i} 10'"
config 2 "tokio_line current_thread" "$TOKIO --flavor current" "--clients 5000 --request 'DB {i} 10'"
group_titles[3]="PING, 50 clients, one thread"
config 3 "event_loop_server" "$ELS" "--clients 50 --request 'PING'"
config 3 "tokio_line current_thread" "$TOKIO --flavor current" "--clients 50 --request 'PING'"
group_titles[4]="DB {i} 10, 5000 clients, two threads"
config 4 "event_loop_server --loops 2" "$ELS --loops 2" "--clients 5000 --request 'DB {i} 10'"
config 4 "event_loop_server --loops 1" "$ELS --loops 1" "--clients 5000 --request 'DB {i} 10'"
config 4 "tokio_line multi, 2 workers" "$TOKIO --flavor multi --workers 2" "--clients 5000 --request 'DB {i} 10'"
group_titles[5]="HTTP GET /db/{i}?delay_ms=10, 1000 keep-alive connections"
config 5 "event_loop_server (HTTP)" "$ELS" "--clients 1000 --http --request '/db/{i}?delay_ms=10'"
config 5 "hyper_http current_thread" "$HYPER --flavor current" "--clients 1000 --http --request '/db/{i}?delay_ms=10'"
group_titles[6]="event_loop_server, 50 connections: line vs HTTP"
config 6 "line PING" "$ELS" "--clients 50 --request 'PING'"
config 6 "HTTP GET /ping" "$ELS" "--clients 50 --http --request '/ping'"

wanted() { [[ -z $ONLY ]] || [[ " $ONLY " == *" $1 "* ]]; }

echo "load: ${DURATION}s per run, $RUNS runs per configuration, loadgen $LOADGEN" >&2
for g in "${!group_titles[@]}"; do
    wanted "$g" || continue
    echo "== $g. ${group_titles[$g]}" >&2
    for run in $(seq "$RUNS"); do
        # Alternate: every configuration of the group once, then again.
        for c in "${!cfg_group[@]}"; do
            [[ ${cfg_group[$c]} == "$g" ]] || continue
            label=${cfg_label[$c]}
            read -r -a server_cmd <<<"${cfg_server[$c]}"
            eval "load_args=(${cfg_load[$c]})"
            out="$results/g${g}_c${c}_r${run}"
            status=ok
            if start_server "$out.server.log" "${server_cmd[@]}"; then
                if ! timeout -k 5 "$RUN_TIMEOUT" "$LOADGEN" --addr "$server_addr" \
                    --duration "$DURATION" --json "${load_args[@]}" >"$out.json" 2>"$out.err"; then
                    status=failed
                fi
                stop_server
            else
                status=no-server
            fi
            printf '%s\t%s\t%s\t%s\t%s\n' "$g" "$c" "$label" "$run" "$status" >>"$results/runs.tsv"
            if [[ $status == ok ]]; then
                detail=$(tr -d '\n' <"$out.json" | cut -c1-120)
            else
                detail=$(tail -n1 "$out.err" "$out.json" 2>/dev/null | grep -v '^==>' | tr '\n' ' ' | cut -c1-120 || true)
            fi
            echo "   run $run: $label: $status $detail" >&2
        done
    done
done

python3 - "$results" "$DURATION" "$RUNS" <<'PY'
import json, os, statistics, sys
results, duration, runs = sys.argv[1], sys.argv[2], sys.argv[3]
titles = {}
rows = {}  # (group, config) -> dict
for line in open(os.path.join(results, "runs.tsv")):
    g, c, label, run, status = line.rstrip("\n").split("\t")
    key = (int(g), int(c))
    row = rows.setdefault(key, {"label": label, "rps": [], "p99": [], "errors": 0, "failed": 0})
    data = None
    try:
        text = open(os.path.join(results, f"g{g}_c{c}_r{run}.json")).read()
        # The last line holding a JSON object.
        for l in reversed(text.splitlines()):
            l = l.strip()
            if l.startswith("{"):
                data = json.loads(l)
                break
    except (OSError, ValueError):
        pass
    if status != "ok" or data is None or int(data.get("answered", 1)) == 0:
        row["failed"] += 1
        continue
    row["rps"].append(float(data["requests_per_sec"]))
    row["p99"].append(float(data["p99_ms"]))
    row["errors"] += int(data.get("errors", 0))

def med(xs):
    return statistics.median(xs) if xs else None

print(f"\nmedian of {runs} runs, {duration}s each\n")
fmt = "{:<4} {:<30} {:>11} {:>9} {:>8} {:>9} {:>7}"
print(fmt.format("grp", "configuration", "req/s", "p99 ms", "x req/s", "x p99", "errors"))
last_g = None
for (g, c) in sorted(rows):
    row = rows[(g, c)]
    if g != last_g:
        base = rows[(g, c)]
        last_g = g
        print()
    rps, p99 = med(row["rps"]), med(row["p99"])
    brps, bp99 = med(base["rps"]), med(base["p99"])
    ratio = lambda a, b: f"{a / b:.2f}" if a is not None and b else "-"
    note = f" ({row['failed']} failed)" if row["failed"] else ""
    print(fmt.format(
        g, row["label"][:30],
        f"{rps:.0f}" if rps is not None else "n/a",
        f"{p99:.2f}" if p99 is not None else "n/a",
        ratio(rps, brps), ratio(p99, bp99), row["errors"]) + note)
print("\nx req/s and x p99: this row divided by its group's first row.")
PY
