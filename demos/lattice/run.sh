#!/usr/bin/env bash
# The lattice demo: a closed lattice (an issuer, a member credential per process), a NATS server,
# one host running waSCC's kvcounter actor, and two provider processes (HTTP server, key-value on
# NATS JetStream KV), linked with `wasmlet ctl`. A request to the HTTP provider crosses the
# lattice to the actor, whose counter lives in the key-value provider's process. Needs
# nats-server (Debian: apt-get install nats-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
WASMLET="node bin/wasmlet.mjs"
NATS_PORT=${NATS_PORT:-14222}
HTTP_PORT=${HTTP_PORT:-8090}
LATTICE=demo
export NATS_URL="nats://127.0.0.1:${NATS_PORT}"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 & PIDS+=($!)

wait_for() { # file text
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:"; tail -20 "$1"; exit 1
}
wait_for "$WORK/nats.log" "Server is ready"

echo "== the lattice's issuer, and a credential per member (the only way in)"
$WASMLET lattice init --out "$WORK/issuer" --lattice "$LATTICE"
for member in host:host http:provider kv:provider ctl:ctl; do
  $WASMLET lattice creds --issuer "$WORK/issuer/issuer.nk" --role "${member#*:}" --name "${member%:*}" --out "$WORK/${member%:*}.creds" 2>/dev/null
done

# The host may start actor files from this directory only (`ctl start actor` is a remote request).
ACTORS=$(pwd)/demos/wascc-kvcounter
WASMLET_LATTICE_CREDS="$WORK/host.creds" $WASMLET host --allow-local-files "$ACTORS" --log-level warn >"$WORK/host.log" 2>&1 & PIDS+=($!)
WASMLET_LATTICE_CREDS="$WORK/http.creds" $WASMLET provider http-server --log-level warn >"$WORK/http.log" 2>&1 & PIDS+=($!)
WASMLET_LATTICE_CREDS="$WORK/kv.creds" $WASMLET provider keyvalue --log-level warn >"$WORK/kv.log" 2>&1 & PIDS+=($!)
export WASMLET_LATTICE_CREDS="$WORK/ctl.creds"
wait_for "$WORK/host.log" "is up"
wait_for "$WORK/http.log" "is up"
wait_for "$WORK/kv.log" "is up"

KVCOUNTER=$ACTORS/kvcounter.wasm
ACTOR=MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ
echo "== hosts on lattice $LATTICE"
$WASMLET ctl get hosts
HOST_ID=$(grep -o 'host N[A-Z0-9]*' "$WORK/host.log" | head -1 | cut -d' ' -f2)
echo "== start kvcounter on $HOST_ID"
$WASMLET ctl start actor "$KVCOUNTER" --host "$HOST_ID"
echo "== link it to the HTTP server (port $HTTP_PORT) and to key-value (NATS KV bucket demo_counts)"
$WASMLET ctl link put "$ACTOR" wascc:http_server --value PORT="$HTTP_PORT" --value ADDRESS=127.0.0.1
$WASMLET ctl link put "$ACTOR" wascc:keyvalue --value BACKEND=nats --value BUCKET=demo_counts
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/lattice" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== curl through three processes"
for _ in 1 2 3; do curl -s "http://127.0.0.1:$HTTP_PORT/hello/lattice"; echo; done
echo "== inventory"
$WASMLET ctl get inventory
