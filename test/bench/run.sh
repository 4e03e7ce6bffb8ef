#!/usr/bin/env bash
# Side-by-side benchmark of sioproxy, HAProxy and nginx (one run, same workloads, same backend).
# Installs haproxy, nginx and gnuplot-nox from apt when missing (as root), builds the binaries,
# raises the file limit, runs the Go hot-path micro-benchmarks, then test/bench/cmd/benchrun, which
# writes BENCHMARKS.md and docs/bench/*.png.
#
#   ./test/bench/run.sh            full run (5 repetitions + the 100k-session scale test, ~25 min)
#   ./test/bench/run.sh --quick    small run (~4 min; results not for comparison)
#
# Extra arguments go to benchrun (e.g. --reps 3, --big 0, --tail 3000, --tail-conc 10).
#
#   ./test/bench/run.sh --profile DIR
#       instead of the comparison: syscalls per request/message of all three proxies (perf trace),
#       sioproxy's CPU and allocation profiles, goroutine parks, and the memory of idle parked
#       tunnels byte by byte, into DIR/profile.md (its cpu-*.pprof merge into a default.pgo)
#   ./test/bench/run.sh --ab 'base=BIN;other=BIN2:GOGC=50' --reps 5 --quick
#       instead of the comparison: variants of sioproxy side by side (CPU per workload, the tail)
# Node (nodejs, npm) and test/node's npm packages (socket.io, socket.io-client) are installed like
# test/run.sh does: the socket.io-client workloads and the latency tail use them.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
args=()
quick=0
other=0 # --profile or --ab: no comparison, no micro-benchmarks
for a in "$@"; do
  case "$a" in
    --quick|-quick) quick=1; args+=(-quick) ;;
    --profile|--ab|-profile|-ab) other=1; args+=("-${a#--}") ;;
    --*) args+=("${a#-}") ;;
    *) args+=("$a") ;;
  esac
done
step() { printf '\n==> %s\n' "$*" >&2; }

need=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v node >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing: ${need[*]} (run as root, or apt-get install them)" >&2; exit 1; fi
  step "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian starts the packaged services; the benchmark runs its own instances.
  for s in haproxy nginx; do (systemctl stop "$s" || service "$s" stop) >/dev/null 2>&1 || true; done
fi
export PATH="$PATH:/usr/sbin:/sbin"
if [ ! -f test/node/node_modules/.package-lock.json ] || ! cmp -s test/node/package-lock.json test/node/node_modules/.lock-installed; then
  step "npm ci (test/node)"
  (cd test/node && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.lock-installed)
fi

# Enough descriptors for 100k tunnels (client + backend side) in every process we start.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "ulimit -n: $(ulimit -n)" >&2

bin=$(mktemp -d /tmp/sioproxy-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
step "building"
go build -o "$bin/sioproxy" ./cmd/sioproxy
go build -o "$bin/sioload" ./cmd/sioload
go build -o "$bin/benchbackend" ./test/bench/cmd/benchbackend
go build -o "$bin/benchrun" ./test/bench/cmd/benchrun

export BENCH_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$other" = 0 ]; then
  step "Go micro-benchmarks (hot path)"
  benchtime=1s
  [ "$quick" = 1 ] && benchtime=50ms
  go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./sticky/ ./balancer/ ./proxy/ | tee "$bin/micro.txt" >&2
  export BENCH_MICRO="$bin/micro.txt"
fi

step "side-by-side run (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin/benchrun" -sioproxy "$bin/sioproxy" -sioload "$bin/sioload" -backend "$bin/benchbackend" \
  -node "$root/test/node" -out "$root/BENCHMARKS.md" -charts "$root/docs/bench" ${args[@]+"${args[@]}"}
