#!/usr/bin/env bash
# refundd against Redis (appendfsync always) side by side on this machine, loopback only, bounded in time.
# Needs Debian's redis-server and redis-tools (`apt-get install -y redis-server redis-tools`) and release builds:
#   swift build -c release --product refundd && swift build -c release --product refundctl
# Usage: tools/compare_redis.sh [seconds per run]
set -euo pipefail
seconds=${1:-5}
bin=${BIN:-.build/release}
work=$(mktemp -d)
trap 'redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true; [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT

echo "== Redis 7, appendonly yes, appendfsync always"
redis-server --port 6390 --appendonly yes --appendfsync always --dir "$work" --save "" --daemonize yes >/dev/null
sleep 1
redis-benchmark -p 6390 -t set -n 40000 -c 50 -q | tr '\r' '\n' | grep -E "^SET: [0-9]" | sed 's/^/unpipelined, 50 connections: /'
redis-benchmark -p 6390 -t set -n 300000 -c 50 -P 16 -q | tr '\r' '\n' | grep -E "^SET: [0-9]" | sed 's/^/pipelined 16 deep, 50 connections: /'
redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true

echo "== refundd, fsync=always"
"$bin/refundd" --port 7655 --data-dir "$work/refund-data" >"$work/refundd.out" 2>"$work/refundd.log" &
daemon=$!
for _ in $(seq 1 100); do grep -q "listening" "$work/refundd.out" 2>/dev/null && break; sleep 0.1; done
ctl() { "$bin/refundctl" "$@" --port 7655; }
echo "-- refund.create, pipelined 16 deep, 50 connections"
ctl bench --connections 50 --depth 16 --duration "$seconds" --orders 300000 --mix create=1
echo "-- refund.create, unpipelined, 50 connections"
ctl bench --connections 50 --depth 1 --duration "$seconds" --orders 100000 --mix create=1
echo "-- order.get, pipelined 16 deep, 50 connections"
ctl bench --connections 50 --depth 16 --duration "$seconds" --orders 1000 --mix get=1
echo "-- refund.create at 20,000/s (latency)"
ctl bench --connections 50 --depth 4 --duration "$seconds" --orders 150000 --mix create=1 --rate 20000
kill -TERM "$daemon"; wait "$daemon" || true
daemon=
