#!/usr/bin/env bash
# The model-based test for long runs:
#   tools/model.sh SEED COUNT [STEPS]
# runs COUNT random operation sequences starting at SEED (STEPS operations each, default 30) against the real
# engine and the independent money model (Tests/RefundEngineTests/MoneyModel.swift). A failure prints its seed,
# the shortest failing prefix and the history; `tools/model.sh <that seed> 1` reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
count=${2:-10000}
steps=${3:-30}
swift build --build-tests >/dev/null
REFUND_MODEL_SEED=$seed REFUND_MODEL_COUNT=$count REFUND_MODEL_STEPS=$steps \
  swift test --skip-build --filter ModelBasedTests 2>&1 | grep -E "model:|model seed|shortest|reproduce|✘|✔ Test run" || true
