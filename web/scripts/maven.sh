#!/usr/bin/env bash
# Maven's way into the web app (web/pom.xml builds and unit-tests it, server-app/pom.xml runs the
# browser tests against the packaged server): installs the npm packages exactly as the lock file
# says when they are missing or older than it, then runs one npm script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "The CivicSync web app needs Node.js 20.19 or newer with npm (e.g. apt-get install nodejs npm, or nodejs.org)." >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "The CivicSync web app needs Node.js 20.19 or newer; this is $(node --version)." >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec npm run --silent "$@"
