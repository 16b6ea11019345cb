#!/usr/bin/env bash
# Soak: N x N request/response and publish/subscribe with random SIGKILLs for
# a given time, against a domain that never goes idle; fails if a chunk is
# lost, a payload is corrupt, a pool does not refill within 1 s after a kill
# wave, or the daemon's or the bystander's memory grows.
#   bash tests/soak.sh [seconds]     (default 120; SHOAL_BUILD_DIR=build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_WANTED=${1:-${SHOAL_SOAK_SECONDS:-120}}
BUILD=${SHOAL_BUILD_DIR:-build}
BIN="$BUILD/tests/c/test_storm"
if [ ! -x "$BIN" ]; then
  echo "soak: $BIN is missing; build first (cmake -S . -B $BUILD && cmake --build $BUILD)" >&2
  exit 2
fi
echo "soak: ${SECONDS_WANTED} s of kill waves against a busy domain"
SHOAL_STORM_SECONDS="$SECONDS_WANTED" "$BIN"
