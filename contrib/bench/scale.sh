#!/bin/sh
# Holds 100,000 idle WebSocket connections on one wsgate, the scale target
# of the performance work, and prints the proxy's memory per connection.
#
#   contrib/bench/scale.sh [BUILDDIR]     (default: build)
#
# The open-files limit is per process, so the load is split: wsgate runs
# 7 workers (worker_connections 19000, one listener per worker with
# reuseport) proxying to a mux upstream, and 6 wsbench processes each hold
# 16,700 connections from their own loopback source address (127.0.0.2
# to 127.0.0.7), which also keeps every source below the ephemeral port
# range. Everything binds 127.0.0.1 and is stopped by PID at the end.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
b=${1:-$top/build}
per=${SCALE_PER:-16700}
hold=${SCALE_HOLD:-40}
tmp=$(mktemp -d)
pids=""

stop() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap stop EXIT INT TERM

# a free port from the kernel, as the tests pick theirs
port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rss_kib() {
    s=0
    for p in "$1" $(pgrep -P "$1"); do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null)
        s=$((s + ${r:-0}))
    done
    echo "$s"
}

for f in src/wsgate contrib/echo-server contrib/wsbench/wsbench; do
    [ -x "$b/$f" ] || { echo "scale: $b/$f not found: build first" >&2; exit 1; }
done
listen=$(port)
backend=$(port)
mkdir "$tmp/logs"
cat >"$tmp/wsgate.conf" <<CONF
worker_processes 7;
pid logs/wsgate.pid;
error_log logs/error.log warn;
events { worker_connections 19000; }
server {
    listen 127.0.0.1:$listen reuseport;
    location /mux { proxy_pass mux 127.0.0.1:$backend; }
}
CONF
"$b/contrib/echo-server" -l "127.0.0.1:$backend" 2>/dev/null &
pids="$pids $!"
"$b/src/wsgate" -p "$tmp/" -c "$tmp/wsgate.conf" -F &
g=$!
pids="$pids $g"
sleep 1
base=$(rss_kib "$g")

load=""
for i in 2 3 4 5 6 7; do
    "$b/contrib/wsbench/wsbench" --json --idle "$per" --hold "$hold" \
        --source-addresses "127.0.0.$i" "ws://127.0.0.1:$listen/mux" \
        >"$tmp/wsbench$i.json" 2>"$tmp/wsbench$i.err" &
    load="$load $!"
done
pids="$pids $load"
# all connected well before the hold ends; sample in its middle
sleep $((hold * 3 / 4))
held=$(rss_kib "$g")
conns=$(ss -Htn state established "( sport = :$listen )" | wc -l)
for p in $load; do
    wait "$p"
done

total=0 errors=0
for i in 2 3 4 5 6 7; do
    r=$(/usr/bin/python3 -c "import json; r = json.load(open('$tmp/wsbench$i.json')); print(r['idle']['held'], r['errors']['total'])" 2>/dev/null) ||
        { echo "scale: wsbench $i gave no result: $(cat "$tmp/wsbench$i.err")" >&2; exit 1; }
    # shellcheck disable=SC2086 # two numbers, split on purpose
    set -- $r
    total=$((total + $1)) errors=$((errors + $2))
done
echo "held $total of $((per * 6)) idle connections ($conns established at the proxy), $errors client errors"
echo "wsgate (master and 7 workers): $base KiB before, $held KiB held, $(((held - base) * 1024 / (conns > 0 ? conns : 1))) B per connection"
grep -E '\[(alert|crit|emerg)\]' "$tmp/logs/error.log" >&2 && exit 1
[ "$total" -ge 100000 ] && [ "$errors" -eq 0 ]
