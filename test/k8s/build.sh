#!/usr/bin/env bash
# Builds the kube-apiserver used by the Kubernetes tests from the
# k8s.io/kubernetes Go module (no prebuilt binary can be downloaded here) and
# caches it. Prints its path.
#
# k8s.io/kubernetes refers to its staging modules (k8s.io/api, client-go, ...)
# as ./staging/...; go.mod here replaces each with the published v0.x release
# of the same minor. go.mod and go.sum are complete and committed: the build
# never edits them (-mod=readonly), so CI needs no `go mod tidy`. Concurrent
# runs wait on a lock. To move to another release: change the version in
# go.mod (require and every replace), `go mod tidy`, and bump $version below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=v1.37.2
cache=${SIOPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sioproxy}
bin="$cache/kube-apiserver-$version"
ok() { [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; }
if ok; then
  echo "$bin"; exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.kube-apiserver-build.lock"
if command -v flock >/dev/null; then
  flock 9
  if ok; then echo "$bin"; exit 0; fi # built by the run we waited for
fi
cd "$here"
start=$(date +%s)
GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$bin.tmp.$$" k8s.io/kubernetes/cmd/kube-apiserver >&2
mv "$bin.tmp.$$" "$bin"
echo "kube-apiserver $version built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
