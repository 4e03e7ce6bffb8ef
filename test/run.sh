#!/usr/bin/env bash
# The test command of the README: installs what the tests need (npm packages from the lock file,
# Debian's chromium for the browser test, haproxy and nginx for the tests behind real fronts,
# openssl and prlimit for the TLS and descriptor-limit tests, etcd and kubectl, python3-socketio &
# co. for test/pysio, the Consul agent and kube-apiserver built from their Go modules), then runs the
# unit tests (with -race), short fuzzing of every parser, and the end-to-end tests against real
# Socket.IO servers and clients (npm and Python), a real Consul agent, a real Kubernetes API server,
# a real browser and real HAProxy and nginx.
#
#   ./test/run.sh            everything
#   ./test/run.sh unit       unit tests only (no installs)
#   FUZZTIME=30s ./test/run.sh   longer fuzzing
#   SIOPROXY_SOAK=10m ./test/run.sh   a longer chaos soak (test/chaos, docs/chaos.md; 60 s by default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
what=${1:-all}
step() { printf '\n==> %s\n' "$*"; }

install_deps() {
  step "installing test dependencies"
  need=()
  # sbin tools: not on every PATH, so look there too.
  has() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
  has chromium || need+=(chromium)
  has node || need+=(nodejs npm)
  has haproxy || need+=(haproxy)
  has nginx || need+=(nginx)
  has openssl || need+=(openssl)
  has prlimit || need+=(util-linux)
  has etcd || need+=(etcd-server)        # under the Kubernetes API server
  has kubectl || need+=(kubernetes-client) # applies deploy/kubernetes in a test
  has unshare || need+=(util-linux)       # the Kubernetes e2e test's network namespace
  has ip || need+=(iproute2)
  has certutil || need+=(libnss3-tools) # Chromium's NSS database for the https demo
  # python-socketio (test/pysio): Debian's packages, for /usr/bin/python3.
  for p in python3-socketio python3-engineio python3-aiohttp python3-requests python3-websocket; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
      # Debian starts the packaged services; the tests run their own instances.
      for s in haproxy nginx; do (systemctl stop "$s" || service "$s" stop) >/dev/null 2>&1 || true; done
    else
      echo "missing: ${need[*]} (install them with apt-get as root)" >&2; exit 1
    fi
  fi
  if [ ! -f test/node/node_modules/.package-lock.json ] || ! cmp -s test/node/package-lock.json test/node/node_modules/.lock-installed; then
    (cd test/node && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.lock-installed)
  fi
  SIOPROXY_CONSUL=$(test/consul/build.sh)
  export SIOPROXY_CONSUL
  echo "consul: $SIOPROXY_CONSUL"
  # kube-apiserver from the k8s.io/kubernetes module: about 20 CPU-minutes once, then cached.
  SIOPROXY_KUBE_APISERVER=$(test/k8s/build.sh)
  export SIOPROXY_KUBE_APISERVER
  echo "kube-apiserver: $SIOPROXY_KUBE_APISERVER"
}

checks() {
  step "gofmt and go vet"
  bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/node/*'))
  if [ -n "$bad" ]; then echo "gofmt needed: $bad" >&2; exit 1; fi
  go vet ./...
}

unit() {
  step "unit tests (race detector)"
  go test -race -count=1 -timeout 15m $(go list ./... | grep -v /test/)
}

fuzz() {
  step "fuzzing every parser (${FUZZTIME:-5s} each)"
  for pkg in $(go list ./... | grep -v /test/); do
    dir=${pkg#sioproxy}; dir=.${dir}
    for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
      # Go's fuzzer sometimes reports "context deadline exceeded" when -fuzztime ends while a
      # worker is mid-call, with no failing input; that run found nothing, so it is run again.
      for try in 1 2 3; do
        if out=$(go test -run='^$' -fuzz="^${f}\$" -fuzztime="${FUZZTIME:-5s}" "$pkg" 2>&1); then break; fi
        if grep -q 'Failing input written' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out" || [ "$try" = 3 ]; then
          echo "FAIL $pkg $f"; echo "$out" | tail -40; exit 1
        fi
      done
      echo "ok  $pkg $f"
    done
  done
}

e2e() {
  step "end-to-end tests (real Socket.IO, Consul, Kubernetes API server, Chromium)"
  # One package at a time: the suites are CPU-heavy and some measure latency.
  go test -p 1 -count=1 -timeout 40m -v ./test/... 2>&1 | tee /tmp/sioproxy-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go:' || true
  grep -q '^FAIL' /tmp/sioproxy-e2e.log && exit 1
  grep -q '^ok' /tmp/sioproxy-e2e.log || { echo "end-to-end tests did not run" >&2; exit 1; }
}

case "$what" in
  unit) checks; unit ;;
  e2e) install_deps; e2e ;;
  all) install_deps; checks; unit; fuzz; e2e ;;
  *) echo "usage: $0 [all|unit|e2e]" >&2; exit 2 ;;
esac
step "all tests passed"
