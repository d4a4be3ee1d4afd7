#!/usr/bin/env bash
# Installs what the tests need and runs them: Debian's nats-server, redis-server and
# docker-registry (the tests start their own instances on free loopback ports), kubectl,
# the npm dependencies, then the typecheck and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npx tsc -p tsconfig.json
node scripts/run-tests.mjs "$@"
