#!/usr/bin/env bash
# The seeded simulation of crashes, restarts and disk faults, for long runs:
#   tools/simulate.sh SEED COUNT [STEPS]
# runs COUNT histories starting at SEED (STEPS operations each, default 40). A failure prints its seed and
# history; `tools/simulate.sh <that seed> 1` reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
count=${2:-1000}
steps=${3:-40}
swift build --build-tests >/dev/null
REFUND_SIM_SEED=$seed REFUND_SIM_COUNT=$count REFUND_SIM_STEPS=$steps \
  swift test --skip-build --filter SimulationTests 2>&1 | grep -E "simulation:|simulation seed|reproduce|✘|✔ Test run" || true
