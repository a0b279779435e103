#!/usr/bin/env bash
# Builds the DocC documentation of RefundCore and RefundEngine with swift-docc-plugin and fails on any warning
# (a broken symbol link in a doc comment or an article, an unknown topic). Part of the README's test command.
#
#   tools/docs.sh                              # with the default build folder (.build)
#   tools/docs.sh --scratch-path .build-mine   # any `swift package` option goes before the command
#
# The archives land in <build folder>/plugins/Swift-DocC/outputs/<Target>.doccarchive.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in RefundCore RefundEngine; do
    swift package "$@" generate-documentation --target "$target" --warnings-as-errors 2>&1 | tee "$log"
    if grep -q "warning:" "$log"; then
        echo "tools/docs.sh: the documentation of $target has warnings (above)" >&2
        exit 1
    fi
done
echo "tools/docs.sh: RefundCore and RefundEngine documented without warnings"
