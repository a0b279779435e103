#!/usr/bin/env bash
# kill -9 rounds under load: tools/crash_rounds.sh [ROUNDS]
# A real process (refund-crashtest: eight concurrent workers putting orders and refunding lines with
# fsync=always) is killed with SIGKILL after a random number of acknowledged changes, ROUNDS times on one data
# directory; after each kill the directory is recovered and every acknowledged order and refund must be there
# exactly once, then a clean stop and a second open must change nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-100}
swift build --build-tests >/dev/null
REFUND_CRASH_ROUNDS=$rounds swift test --skip-build --filter CrashTests 2>&1 | grep -E "crash rounds:|✘|Test run" || true
