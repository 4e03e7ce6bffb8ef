#!/usr/bin/env bash
# TLS termination benchmark: full handshakes per second and server CPU per handshake of sioproxy,
# HAProxy and nginx, with the same ECDSA P-256 and RSA 2048 certificates, TLS 1.3 and 1.2, each
# server on one core. Installs haproxy and nginx from apt when missing (as root), builds the
# binaries, runs test/bench/cmd/tlsbench and writes docs/bench/tls-handshakes.md.
#
#   ./test/bench/tls.sh            publication run (3 repetitions of 10 s per case; needs an idle machine)
#   ./test/bench/tls.sh --quick    short run for development (results not for comparison)
#
# Extra arguments go to tlsbench (e.g. -conc 64).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
args=()
out="$root/docs/bench/tls-handshakes.md"
for a in "$@"; do
  case "$a" in
    --quick|-quick) args+=(-duration 2s -warmup 1s -reps 1); out="" ;;
    *) args+=("$a") ;;
  esac
done
need=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing: ${need[*]} (run as root, or apt-get install them)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  for s in haproxy nginx; do (systemctl stop "$s" || service "$s" stop) >/dev/null 2>&1 || true; done
fi
export PATH="$PATH:/usr/sbin:/sbin"
ulimit -n "$(ulimit -Hn)"
bin=$(mktemp -d /tmp/sioproxy-tlsbench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/sioproxy" ./cmd/sioproxy
go build -o "$bin/tlsbench" ./test/bench/cmd/tlsbench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  "$bin/tlsbench" -sioproxy "$bin/sioproxy" -out "$out" ${args[@]+"${args[@]}"}
  echo "wrote $out" >&2
else
  "$bin/tlsbench" -sioproxy "$bin/sioproxy" ${args[@]+"${args[@]}"}
fi
