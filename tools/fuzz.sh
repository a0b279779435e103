#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in Fuzz/ (one per decoder).
#
#   tools/fuzz.sh TARGET [SECONDS]      TARGET: segment | snapshot | change | request | all (default 60 seconds each)
#
#   segment   the WAL segment reader: LogReader.readAll / recover / recover(repair:) over crafted segment files
#   snapshot  the snapshot file decoder: SnapshotStore.decode
#   change    ChangeCodec, OrderStateCodec and the engine's envelopes (partition log record, snapshot payload,
#             control record)
#   request   one protocol line as the server decodes it (JSONParser, JSONValueDecoder, Request, Operation)
#
# The library targets are built with -sanitize=fuzzer,address (a SwiftPM executable target cannot link libFuzzer's
# main), then each Fuzz/FuzzX.swift entry is linked against their object files with swiftc. The seeds in
# Fuzz/corpus/TARGET are read, never written: new inputs go to SCRATCH/fuzz/corpus-TARGET. On a crash (or leak,
# timeout, out-of-memory) the script prints the input libFuzzer saved and exits 1; add it to Fuzz/corpus/TARGET
# as crash-<what> once the decoder is fixed (FuzzCorpusTests replays the corpus in `swift test`).
#
# Environment: FUZZ_SCRATCH (default .build-fuzz: the build folder, which this rebuilds with the sanitizer flags),
# FUZZ_FLAGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-seed=1").
set -euo pipefail

cd "$(dirname "$0")/.."
target=${1:-}
seconds=${2:-60}
scratch=${FUZZ_SCRATCH:-.build-fuzz}
all_targets=(segment snapshot change request)

usage() {
    echo "usage: tools/fuzz.sh segment|snapshot|change|request|all [SECONDS]" >&2
    exit 2
}

module_for() {
    case $1 in
        segment | snapshot) echo RefundStorage ;;
        change) echo RefundEngine ;;
        request) echo RefundServer ;;
        *) usage ;;
    esac
}

entry_for() {
    case $1 in
        segment) echo Fuzz/FuzzSegment.swift ;;
        snapshot) echo Fuzz/FuzzSnapshot.swift ;;
        change) echo Fuzz/FuzzChange.swift ;;
        request) echo Fuzz/FuzzRequest.swift ;;
    esac
}

[[ $seconds =~ ^[0-9]+$ ]] || usage
case $target in
    all) targets=("${all_targets[@]}") ;;
    segment | snapshot | change | request) targets=("$target") ;;
    *) usage ;;
esac

# RefundServer's closure holds every module the targets use; one build serves them all.
if [[ $target == all ]]; then modules=(RefundServer); else modules=("$(module_for "$target")"); fi
for module in "${modules[@]}"; do
    echo "== building $module with -sanitize=fuzzer,address into $scratch" >&2
    swift build --scratch-path "$scratch" --target "$module" -Xswiftc -sanitize=fuzzer,address >&2
done
bin=$(swift build --scratch-path "$scratch" --show-bin-path)
out="$scratch/fuzz"
mkdir -p "$out"

# The link inputs of one module: the objects of it and of every target it depends on (from SwiftPM's build
# description), and the clang module maps its interface needs.
link_inputs() {
    python3 - "$bin" "$1" <<'PY'
import glob, json, os, sys
bin_path, module = sys.argv[1], sys.argv[2]
description = json.load(open(os.path.join(bin_path, "description.json")))
dependencies = description["targetDependencyMap"]
commands = {c["moduleName"]: c for key, c in description["swiftCommands"].items() if "-tool." not in key}
closure, stack = set(), [module]
while stack:
    name = stack.pop()
    if name not in closure:
        closure.add(name)
        stack.extend(dependencies.get(name, []))
args = []
for name in sorted(closure):
    if name in commands:
        args += commands[name]["objects"]
    else:  # a C target
        args += sorted(glob.glob(os.path.join(bin_path, name + ".build", "**", "*.o"), recursive=True))
other = commands[module]["otherArguments"]
for i, arg in enumerate(other):
    if arg == "-Xcc" and i + 1 < len(other) and (other[i + 1].startswith("-fmodule-map-file=") or other[i + 1] == "-I"):
        args += ["-Xcc", other[i + 1]]
        if other[i + 1] == "-I":
            args += ["-Xcc", other[i + 3]]
print("\n".join(args))
PY
}

build_target() {
    local name=$1 module entry
    module=$(module_for "$name")
    entry=$(entry_for "$name")
    local inputs=()
    mapfile -t inputs < <(link_inputs "$module")
    echo "== linking $out/fuzz-$name ($entry, ${#inputs[@]} inputs)" >&2
    swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -g -Onone -use-ld=lld \
        -module-cache-path "$bin/ModuleCache" -I "$bin/Modules" \
        "$entry" "${inputs[@]}" -llz4 -o "$out/fuzz-$name" >&2
}

run_target() {
    local name=$1
    local work="$out/corpus-$name" artifacts="$out/crashes-$name/" log="$out/fuzz-$name.log"
    mkdir -p "$work" "$artifacts"
    local flags=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$artifacts")
    [[ $name == request ]] && flags+=(-dict=Fuzz/request.dict)
    # shellcheck disable=SC2206
    [[ -n ${FUZZ_FLAGS:-} ]] && flags+=($FUZZ_FLAGS)
    echo "== fuzzing $name for ${seconds}s (seeds Fuzz/corpus/$name, new inputs $work, log $log)" >&2
    local status=0
    # Swift's own crash backtracer would race ASan's report (and take minutes to symbolicate): libFuzzer reports.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} "$out/fuzz-$name" "${flags[@]}" "$work" "Fuzz/corpus/$name" \
        >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" >&2 || true
    if ((status != 0)); then
        echo "!! $name: libFuzzer exited with status $status; the end of $log:" >&2
        tail -n 60 "$log" >&2
        local saved
        saved=$(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $5}' | tail -n 1 || true)
        echo "!! crashing input: ${saved:-(none saved; see $log)}" >&2
        [[ -n $saved ]] && echo "!! reproduce: SWIFT_BACKTRACE=enable=no $out/fuzz-$name $saved" >&2
        return 1
    fi
    echo "== $name: no crash in ${seconds}s" >&2
}

failed=()
for name in "${targets[@]}"; do build_target "$name"; done
for name in "${targets[@]}"; do run_target "$name" || failed+=("$name"); done
if ((${#failed[@]} > 0)); then
    echo "!! crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "== all fuzz targets ran ${seconds}s without a crash: ${targets[*]}" >&2
