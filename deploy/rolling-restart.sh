#!/bin/sh
# A deploy without dropping requests or sessions: rebuilds the image, then replaces the API
# nodes one at a time, and the workers last. Each node is first drained in HAProxy (no new
# requests or sockets go to it), given DRAIN_SECONDS (default 5) for the requests under
# way, then stopped with SIGTERM (it finishes what it serves and closes its WebSockets with
# 1001; the tabs reconnect through HAProxy to the other node and resume), started again
# from the new image, and put back once HAProxy sees it up. Run from anywhere:
#
#   sh deploy/rolling-restart.sh
#
# Needs Docker Compose v2 (`docker compose … --wait`). docs/operations.md, "Deploying".
set -eu
cd "$(dirname "$0")/.."
nodes="${NODES:-api1 api2}"
drain="${DRAIN_SECONDS:-5}"

# HAProxy's runtime API listens on the compose network only: ask it from a Tessera container.
ha() { docker compose exec -T worker node -e "$(cat deploy/haproxy-api.cjs)" haproxy:9999 "$1"; }
state() { ha "show stat" | awk -F, -v n="$1" '$1 == "api" && $2 == n { print $18 }'; }

docker compose build
for node in $nodes; do
  echo "rolling-restart: draining $node"
  ha "set server api/$node state drain" >/dev/null
  ha "set server api_live/$node state drain" >/dev/null
  sleep "$drain"
  echo "rolling-restart: replacing $node"
  docker compose up -d --no-deps --force-recreate --wait "$node"
  ha "set server api/$node state ready" >/dev/null
  ha "set server api_live/$node state ready" >/dev/null
  tries=0
  until [ "$(state "$node")" = "UP" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
      echo "rolling-restart: HAProxy does not see $node up after 60 s; stopping here" >&2
      exit 1
    fi
    sleep 1
  done
  echo "rolling-restart: $node is back in HAProxy"
done
# Workers last: SIGTERM lets the running jobs finish; scheduled jobs run on whichever is up.
docker compose up -d --no-deps --force-recreate --wait worker
echo "rolling-restart: done"
