#!/usr/bin/env bash
# Syscalls per answered request of a running server.
#
#   scripts/syscalls_per_request.sh PID HOST:PORT [SECONDS]
#
# Start the load yourself first (e.g. target/release/loadgen ...), then run
# this while it is going. With perf installed it counts with perf's
# raw_syscalls tracepoint (accurate windows, no slowdown); otherwise, or
# with TRACER=strace, as follows. It attaches `strace -c -f` to PID for SECONDS
# (default 3, or $SECONDS_TRACED), reads the server's `requests=` counter
# over a fresh TCP connection just before and just after that window (the
# line protocol's `STATS`; with STATS_HTTP=1 an HTTP `GET /stats`, for
# hyper_http), and prints total syscalls / requests answered in the window.
#
# Needs strace (/usr/bin/strace) and permission to ptrace PID (root, or
# kernel.yama.ptrace_scope=0 for your own processes). strace slows the
# server down a lot: read the ratio, not the rate. The two STATS
# connections' own syscalls (a few dozen) are counted too.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
pid=$1
addr=$2
secs=${3:-${SECONDS_TRACED:-3}}
host=${addr%:*}
port=${addr##*:}

command -v strace >/dev/null || { echo "strace not found (apt-get install strace)" >&2; exit 1; }
kill -0 "$pid" 2>/dev/null || { echo "no process $pid" >&2; exit 1; }

# The server's requests= counter, over a fresh connection.
requests() {
    local line
    exec 3<>"/dev/tcp/$host/$port" || return 1
    if [[ ${STATS_HTTP:-0} == 1 ]]; then
        printf 'GET /stats HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
        line=$(timeout 5 cat <&3 | grep -a 'requests=' | head -n1) || true
    else
        printf 'STATS\n' >&3
        IFS= read -r -t 5 line <&3 || true
    fi
    exec 3>&- 3<&-
    [[ $line =~ requests=([0-9]+) ]] || { echo "no requests= in '$line'" >&2; return 1; }
    echo "${BASH_REMATCH[1]}"
}

out=$(mktemp -d)
strace_pid=
cleanup() {
    if [[ -n $strace_pid ]] && kill -0 "$strace_pid" 2>/dev/null; then
        kill -INT "$strace_pid" 2>/dev/null || true
        wait "$strace_pid" 2>/dev/null || true
    fi
    rm -rf "$out"
}
trap cleanup EXIT

# With perf (linux-perf), count with the raw_syscalls tracepoint: it does
# not stop the server at every call the way strace's ptrace does, so the
# server runs at full speed and the STATS window and the counting window
# match. TRACER=strace forces the strace path below.
if [[ ${TRACER:-perf} == perf ]] && command -v perf >/dev/null; then
    before=$(requests)
    perf stat -e raw_syscalls:sys_enter -x, -o "$out/perf" -p "$pid" -- sleep "$secs"
    after=$(requests)
    calls=$(awk -F, '/sys_enter/ { print $1 }' "$out/perf")
    answered=$((after - before))
    echo "pid $pid, ${secs}s counted by perf: $calls syscalls, $answered requests answered"
    if [[ -z $calls || $answered -le 0 ]]; then
        echo "syscalls per request: n/a (no requests answered in the window: is the load running?)"
        exit 1
    fi
    python3 -c "print(f'syscalls per request: {$calls / $answered:.2f}')"
    exit 0
fi

# -c: count; -f: all threads (and ones started later); summary to a file.
strace -c -S calls -f -p "$pid" -o "$out/summary" 2>"$out/attach" &
strace_pid=$!
# Wait (at most 5 s) until strace has attached before opening the window.
for _ in $(seq 50); do
    grep -q 'attached' "$out/attach" 2>/dev/null && break
    kill -0 "$strace_pid" 2>/dev/null || { cat "$out/attach" >&2; exit 1; }
    sleep 0.1
done

before=$(requests)
sleep "$secs"
after=$(requests)
kill -INT "$strace_pid"
timeout 30 tail --pid="$strace_pid" -f /dev/null || true
wait "$strace_pid" 2>/dev/null || true
strace_pid=

calls=$(awk '$NF == "total" { print $4 }' "$out/summary")
answered=$((after - before))
echo "pid $pid, ${secs}s traced: $calls syscalls, $answered requests answered"
echo "top syscalls:"
awk '/^-/ { n++; next } n == 1 && NF >= 5 { printf "  %-16s %s\n", $NF, $4 }' "$out/summary" | head -n 6
if [[ -z $calls || $answered -le 0 ]]; then
    echo "syscalls per request: n/a (no requests answered in the window: is the load running?)"
    exit 1
fi
python3 -c "print(f'syscalls per request: {$calls / $answered:.2f}')"
