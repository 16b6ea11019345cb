#!/usr/bin/env bash
# The main job: build shoal, start shoald on its default configuration,
# run the C request/response (N clients x N servers, the seed scenario)
# and publish/subscribe examples end to end, show the daemon's view, stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SHOAL_BUILD_DIR:-build}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target shoald shoal shoal_cli example_request_response example_publish_subscribe

RUNDIR=$(mktemp -d /tmp/shoal-demo.XXXXXX)
export SHOAL_RUNTIME_DIR="$RUNDIR" SHOAL_DOMAIN=demo
DAEMON_PID=""
stop() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true
  fi
  rmdir "$RUNDIR" 2>/dev/null || rm -rf "$RUNDIR"
}
trap stop EXIT

# --ready-fd: the daemon says "ready" once it accepts connections
READY=$(mktemp -u "$RUNDIR/ready.XXXX"); mkfifo "$READY"
"$BUILD/shoald" --domain demo --log-level info --ready-fd 3 3>"$READY" &
DAEMON_PID=$!
read -r -t 10 line <"$READY" || { echo "shoald did not become ready" >&2; exit 1; }
rm -f "$READY"
echo "== shoald (pid $DAEMON_PID) is $line on domain 'demo', default configuration"

echo "== request/response: N clients x N servers, shoal_client_call with a timeout"
"$BUILD/examples/example_request_response" --domain demo
echo "== publish/subscribe"
"$BUILD/examples/example_publish_subscribe" --domain demo
echo "== what the daemon sees now (every chunk back in its pool)"
"$BUILD/shoal" --domain demo status
echo "== demo finished"
