#!/usr/bin/env bash
# Proxy CPU per acked emit at a fixed offered load (not a closed loop): sioproxy (GOMAXPROCS=1) and
# HAProxy (one thread, the benchmark's settings) side by side in front of one benchbackend, the same
# sioload run through each in turn, CPU of every thread from /proc/PID/task/*/schedstat.
#
#   ./test/bench/fixedrate.sh                  # 4 alternating runs per mode (polling, websocket)
#   BASE=/path/to/other/sioproxy ./test/bench/fixedrate.sh   # also an older sioproxy binary
#
# Needs an idle machine; docs/bench/findings.md §5 quotes its output.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-4}
bin=$(mktemp -d /tmp/sioproxy-fixedrate.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/sioproxy" ./cmd/sioproxy
go build -o "$bin/sioload" ./cmd/sioload
go build -o "$bin/benchbackend" ./test/bench/cmd/benchbackend
command -v haproxy >/dev/null || { echo "haproxy missing: ./test/bench/run.sh installs it" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin/benchbackend" >"$bin/backend.out" 2>&1 &
for _ in $(seq 50); do [ -s "$bin/backend.out" ] && break; sleep 0.1; done
backend=$(head -1 "$bin/backend.out")

declare -A port pid
hp=$(free_port)
cat >"$bin/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 9900
defaults
    mode http
    option http-keep-alive
    timeout connect 3s
    timeout client 90s
    timeout server 90s
    timeout http-keep-alive 90s
    timeout tunnel 90s
frontend fe
    bind 127.0.0.1:$hp
    default_backend be
backend be
    http-reuse safe
    server s1 ${backend#http://} maxconn 9900
CFG
haproxy -f "$bin/haproxy.cfg" -db >"$bin/haproxy.log" 2>&1 &
port[haproxy]=$hp pid[haproxy]=$!
start_sioproxy() { # name binary
  local p; p=$(free_port)
  GOMAXPROCS=1 "$2" -listen "127.0.0.1:$p" -admin-listen '' -log-level error -backend "$backend" &
  port[$1]=$p pid[$1]=$!
}
start_sioproxy sioproxy "$bin/sioproxy"
names=(haproxy sioproxy)
if [ -n "${BASE:-}" ]; then start_sioproxy base "$BASE"; names+=(base); fi
for n in "${names[@]}"; do
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/${port[$n]}") 2>/dev/null && break; sleep 0.1; done
done

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
for mode in polling websocket; do
  for ((i = 0; i < runs; i++)); do
    for ((k = 0; k < ${#names[@]}; k++)); do
      n=${names[$(((i + k) % ${#names[@]}))]}
      t0=$(cpu_ns "${pid[$n]}")
      acked=$("$bin/sioload" -url "http://127.0.0.1:${port[$n]}" -mode "$mode" -sessions 100 -ramp 1000 -rate 20 -duration 8s -json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["emits"]["acked"])')
      t1=$(cpu_ns "${pid[$n]}")
      awk -v m="$mode" -v n="$n" -v a="$acked" -v d=$((t1 - t0)) 'BEGIN {printf "%-9s %-8s %6.1f us per acked emit (%d acked)\n", m, n, d / 1000 / (a > 0 ? a : 1), a}'
    done
  done
done
