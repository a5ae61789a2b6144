#!/usr/bin/env bash
# `npm run setup`: everything the tests need on a fresh Debian machine — Debian's chromium for
# the browser tests and redis-server for the multi-node tests (apt; sudo when not root; neither
# runs as a service: the tests start their own redis-server), and the npm packages, including
# the real deno and bun binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get install -y "${missing[@]}" || { $as_root apt-get update && $as_root apt-get install -y "${missing[@]}"; }
fi
npm install --no-audit --no-fund
