#!/usr/bin/env bash
# `npm run setup`: everything the tests need on a fresh Debian machine — Debian's chromium for
# the browser tests (apt; sudo when not root) and the npm packages, including the real deno
# and bun binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get install -y chromium || { $as_root apt-get update && $as_root apt-get install -y chromium; }
fi
npm install --no-audit --no-fund
