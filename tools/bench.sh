#!/usr/bin/env bash
# Runs the benchmark suite in Benchmarks/ (package-benchmark); extra arguments go to `benchmark`,
# e.g. `tools/bench.sh --filter BulkCancel100k` or `tools/bench.sh baseline update main`.
# Builds into .build-bench/ at the repository root, apart from the main package's .build/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/Benchmarks"
exec swift package --scratch-path "$root/.build-bench" --allow-writing-to-package-directory benchmark "$@"
