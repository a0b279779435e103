#!/usr/bin/env bash
# How bulk cancellation scales with partitions (one actor each) on a many-core machine.
# Usage: tools/scaling.sh [orders] [binary]   (binary: a release refund-demo, e.g. built with
#        `swift build -c release --static-swift-stdlib --product refund-demo` and copied to .device/)
set -u
orders=${1:-1000000}
bin=${2:-.device/refund-demo}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
for p in 1 2 4 8 16; do
    echo "== in memory, $p partitions"
    "$bin" "$orders" --memory --partitions "$p" | grep -E "loaded|time|cpu|memory"
done
for p in 1 4 16; do
    dir=$(mktemp -d)
    echo "== durable, fsync=always, $p partitions"
    "$bin" "$orders" --partitions "$p" --data "$dir/data" | grep -E "loaded|snapshot|time|cpu|log|recovery"
    rm -rf "$dir"
done
