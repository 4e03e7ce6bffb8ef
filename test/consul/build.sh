#!/usr/bin/env bash
# Builds the Consul agent used by the end-to-end tests from its Go module
# (no prebuilt binary can be downloaded here) and caches it. Prints its path.
# go.mod and go.sum here are complete and committed: the build never edits them
# (-mod=readonly), so CI needs no `go mod tidy`. Concurrent runs wait on a lock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SIOPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sioproxy}
bin="$cache/consul-1.14.11"
ok() { [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; }
if ok; then
  echo "$bin"; exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.consul-build.lock"
if command -v flock >/dev/null; then
  flock 9
  if ok; then echo "$bin"; exit 0; fi # built by the run we waited for
fi
cd "$here"
GOFLAGS=-mod=readonly go build -trimpath -o "$bin.tmp.$$" github.com/hashicorp/consul >&2
mv "$bin.tmp.$$" "$bin"
echo "$bin"
