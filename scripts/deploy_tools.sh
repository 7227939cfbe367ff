#!/usr/bin/env bash
# Installs the npm tooling of deploy/tools (package-lock.json, `npm ci`) when node_modules is missing
# or older than the lock file. Serialized with flock, so that parallel tests install it once.
set -euo pipefail
cd "$(dirname "$0")/../deploy/tools"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "deploy_tools: node and npm are needed (Node.js 20 or later)" >&2
  exit 1
fi
exec 9>.install.lock
flock 9
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deploy_tools: npm ci in deploy/tools" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
