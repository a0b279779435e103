#!/usr/bin/env bash
# refundd against Redis 7 (appendfsync always) on this machine, side by side, loopback only; optionally against an
# older refundd build too (BASE_BIN), so "before" and "after" come from the same run. Prints one table: the median
# of RUNS runs of each workload, its ratio to Redis, and the server's CPU per request (refundd's own user + system
# time over the measured phase, read from `stats`).
#
# Needs Debian's redis-server and redis-tools (`apt-get install -y redis-server redis-tools`), python3, and release
# builds: swift build -c release --product refundd && swift build -c release --product refundctl
# Usage: tools/compare_redis.sh [seconds per run] [runs]
#   BIN=.build/release (refundd and refundctl under test)   BASE_BIN=path/to/older/release (optional)
#   IMPORT_ORDERS=200000 (orders of the import row)
set -euo pipefail
seconds=${1:-5}
runs=${2:-3}
bin=${BIN:-.build/release}
base=${BASE_BIN:-}
import_orders=${IMPORT_ORDERS:-200000}
work=$(mktemp -d)
results="$work/results.tsv"
: >"$results"
daemon=
cleanup() {
    redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" "${5:-}" >>"$results"; }

# Orders for the import row: N one-to-six-ticket orders, paid by card.
awk -v n="$import_orders" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = 1 + i % 6; price = 2500 + (i % 3) * 1500
        lines = ""
        for (j = 0; j < k; j++) lines = lines (j ? "," : "") "{\"id\":\"l" j "\",\"ticket_type\":\"tt_ga\",\"price\":" price "}"
        printf "{\"id\":\"ord_%d\",\"event\":\"evt_big\",\"customer\":\"cus_%d\",\"currency\":\"GBP\",\"lines\":[%s],\"tenders\":[{\"id\":\"t1\",\"method\":\"card\",\"amount\":%d,\"gateway_ref\":\"pi_%d\"}]}\n", i, i % 5000, lines, price * k, i
    }
}' >"$work/orders.jsonl"

redis_run() {
    # A fresh directory each run: Redis would otherwise load the last run's append-only file first.
    rm -rf "$work/redis"
    mkdir -p "$work/redis"
    redis-server --port 6390 --appendonly yes --appendfsync always --dir "$work/redis" --save "" --daemonize yes >/dev/null
    for _ in $(seq 1 100); do [ "$(redis-cli -p 6390 ping 2>/dev/null)" = "PONG" ] && break; sleep 0.1; done
    local set1 setp getp
    set1=$(redis-benchmark -p 6390 -t set -n 60000 -c 50 -q | tr '\r' '\n' | grep -E "^SET: [0-9]" | awk '{print $2}')
    setp=$(redis-benchmark -p 6390 -t set -n 400000 -c 50 -P 16 -q | tr '\r' '\n' | grep -E "^SET: [0-9]" | awk '{print $2}')
    getp=$(redis-benchmark -p 6390 -t get -n 1000000 -c 50 -P 16 -q | tr '\r' '\n' | grep -E "^GET: [0-9]" | awk '{print $2}')
    redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do redis-cli -p 6390 ping >/dev/null 2>&1 || break; sleep 0.1; done
    record redis "SET unpipelined" "$set1"
    record redis "SET pipelined 16" "$setp"
    record redis "GET pipelined 16" "$getp"
}

# bench_row NAME LABEL ARGS...: one refundctl bench run, recorded as req/s, p99 (ms) and server µs per request.
bench_row() {
    local name=$1 label=$2 ctl=$3
    shift 3
    local out
    out=$("$ctl" bench --json --port 7655 "$@")
    local rps p99 cpu
    rps=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["per_second"])' <<<"$out")
    p99=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_us"] / 1000)' <<<"$out")
    cpu=$(python3 -c 'import json,sys; v=json.load(sys.stdin).get("server_cpu_us_per_request"); print("" if v is None else v)' <<<"$out")
    record "$name" "$label" "$rps" "$p99" "$cpu"
}

refundd_run() {
    local name=$1 dir=$2
    "$dir/refundd" --port 7655 --data-dir "$work/data-$name" >"$work/refundd.out" 2>"$work/refundd.log" &
    daemon=$!
    for _ in $(seq 1 100); do grep -q "listening" "$work/refundd.out" 2>/dev/null && break; sleep 0.1; done
    local ctl="$dir/refundctl"
    bench_row "$name" "refund.create unpipelined" "$ctl" --connections 50 --depth 1 --duration "$seconds" --orders 100000 --mix create=1
    bench_row "$name" "refund.create pipelined 16" "$ctl" --connections 50 --depth 16 --duration "$seconds" --orders 300000 --mix create=1
    bench_row "$name" "order.get pipelined 16" "$ctl" --connections 50 --depth 16 --duration "$seconds" --orders 1000 --mix get=1
    bench_row "$name" "refund.create at 20,000/s" "$ctl" --connections 50 --depth 4 --duration "$seconds" --orders 150000 --mix create=1 --rate 20000
    kill -TERM "$daemon"; wait "$daemon" || true
    daemon=
    rm -rf "$work/data-$name"
    # The import row: a fresh daemon, the whole file, wall time.
    "$dir/refundd" --port 7655 --data-dir "$work/data-$name" >"$work/refundd.out" 2>"$work/refundd.log" &
    daemon=$!
    for _ in $(seq 1 100); do grep -q "listening" "$work/refundd.out" 2>/dev/null && break; sleep 0.1; done
    local start end
    start=$(date +%s.%N)
    "$ctl" import "$work/orders.jsonl" --port 7655 >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    record "$name" "import (orders/s)" "$(python3 -c "print(round($import_orders / ($end - $start)))")"
    kill -TERM "$daemon"; wait "$daemon" || true
    daemon=
    rm -rf "$work/data-$name"
}

for run in $(seq 1 "$runs"); do
    echo "== run $run of $runs" >&2
    redis_run
    refundd_run refundd "$bin"
    if [ -n "$base" ]; then refundd_run base "$base"; fi
done

python3 - "$results" "$runs" "${base:+yes}" <<'EOF'
import sys, statistics, collections
path, runs, has_base = sys.argv[1], sys.argv[2], sys.argv[3] == "yes"
rows = collections.defaultdict(list)
for line in open(path):
    name, label, rps, p99, cpu = line.rstrip("\n").split("\t")
    rows[(name, label)].append((float(rps) if rps else 0.0, float(p99) if p99 else None, float(cpu) if cpu else None))
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
redis = {label: med([r[0] for r in v]) for (name, label), v in rows.items() if name == "redis"}
peer = {"refund.create unpipelined": "SET unpipelined", "refund.create pipelined 16": "SET pipelined 16",
        "order.get pipelined 16": "GET pipelined 16"}
print(f"medians of {runs} run(s); Redis 7 appendfsync always on the same machine")
print()
head = "| workload | Redis | refundd | × Redis | p99 ms | server µs/request |"
if has_base: head += " before (BASE_BIN) | after ÷ before |"
print(head)
print("|" + " --- |" * (head.count("|") - 1))
for label in ["refund.create unpipelined", "refund.create pipelined 16", "order.get pipelined 16",
              "refund.create at 20,000/s", "import (orders/s)"]:
    now = rows.get(("refundd", label), [])
    if not now: continue
    rps = med([r[0] for r in now]); p99 = med([r[1] for r in now]); cpu = med([r[2] for r in now])
    r = redis.get(peer.get(label, ""), None)
    cells = [label, f"{r:,.0f}" if r else "", f"{rps:,.0f}", f"{rps / r:.2f}" if r else "",
             f"{p99:.2f}" if p99 is not None else "", f"{cpu:.1f}" if cpu is not None else ""]
    if has_base:
        before = rows.get(("base", label), [])
        b = med([x[0] for x in before]) if before else None
        cells += [f"{b:,.0f}" if b else "", f"{rps / b:.2f}" if b else ""]
    print("| " + " | ".join(cells) + " |")
EOF
