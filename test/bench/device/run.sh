#!/usr/bin/env bash
# The full bench on a borrowed machine that has no Node and no network, from the repository's
# root, with .bench-kit (made by test/bench/device/prepare.sh) carried beside the working tree:
#
#   OUT=<folder that comes back> bash test/bench/device/run.sh
#
# Unpacks the kit's Node and the bench's modules, writes the machine's facts, runs a smoke check
# that fails within seconds, then the bench with a wall budget, its most important steps first.
# What comes back in $OUT (all but BENCHMARKS.md written as the run goes, so a run stopped from
# outside still returns the steps that finished):
#   facts.txt     the machine, the kit, the smoke check, how long each part took
#   generated.md  the generated part of BENCHMARKS.md (between its bench markers)
#   BENCHMARKS.md this checkout's BENCHMARKS.md with that part put in
#   raw.jsonl     the raw samples, one JSON line per step
#   bench.log     everything the bench printed
# Settings: BENCH_BUDGET (seconds after which no step starts, default 330; the bench is stopped at
# BENCH_BUDGET + 90), BENCH_FIRST (the steps to run first), BENCH_ARGS (more arguments).
set -uo pipefail
cd "$(dirname "$0")/../../.."
kit=${KIT:-.bench-kit}
out=${OUT:?OUT must name the folder whose files come back}
budget=${BENCH_BUDGET:-330}
first=${BENCH_FIRST:-json-100,json-8584,memory,cold,avro-10k}
mkdir -p "$out"
facts=$out/facts.txt
: >"$facts"
t0=$(date +%s)
say() { echo "$*" | tee -a "$facts"; }
fail() {
  say "FAILED: $*"
  exit 1
}
since() { echo "$(($(date +%s) - t0)) s"; }

[ -f "$kit/node.xz" ] && [ -f "$kit/modules.tar.xz" ] && [ -f "$kit/bench/bundles/manifest.json" ] ||
  fail "no kit at $PWD/$kit: run test/bench/device/prepare.sh here, then carry .bench-kit"
work=$(mktemp -d /tmp/shardwise-device.XXXXXX)
node=$work/node
if command -v xz >/dev/null; then
  xz -dc "$kit/node.xz" >"$node" || fail "xz could not unpack $kit/node.xz"
elif command -v python3 >/dev/null; then
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    "$kit/node.xz" "$node" || fail "python3 could not unpack $kit/node.xz"
else
  fail "neither xz nor python3 here to unpack $kit/node.xz"
fi
chmod +x "$node"
version=$("$node" --version 2>&1) || fail "the kit's node does not run here: $version"
# The bench's modules, as pnpm installed them here: test/bench/dist, Shardwise's packages' dist,
# node_modules (links included).
if [ -e node_modules ]; then
  say "node_modules is here already: the bench runs on it as it is, not on the kit's modules"
elif command -v xz >/dev/null && command -v tar >/dev/null; then
  xz -dc "$kit/modules.tar.xz" | tar -xf - || fail "could not unpack $kit/modules.tar.xz"
elif command -v python3 >/dev/null; then
  python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(".", **({"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}))' \
    "$kit/modules.tar.xz" || fail "python3 could not unpack $kit/modules.tar.xz"
else
  fail "neither xz and tar nor python3 here to unpack $kit/modules.tar.xz"
fi

say "== machine ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
cores=$(nproc 2>/dev/null || echo '?')
memory=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
kernel=$(uname -sr)
say "cpu: ${cpu:-unknown} x $cores cores (nproc), $(grep -c ^processor /proc/cpuinfo 2>/dev/null) in /proc/cpuinfo"
say "memory: ${memory:-unknown}; kernel: $kernel; $(uname -m)"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
say "cpu MHz: $(grep 'cpu MHz' /proc/cpuinfo 2>/dev/null | awk '{print int($4)}' | sort -n | uniq -c | tr '\n' ' ')"
say "node: $version ($node); peak RSS source: $(grep -q '^VmHWM:' /proc/self/status 2>/dev/null && echo 'VmHWM in /proc/self/status' || echo 'no VmHWM: getrusage maxRSS')"
say "kit: $(cat "$kit/stamp.txt" 2>/dev/null || echo 'no stamp')"
say "unpacked in $(since)"

say "== smoke check"
timeout -k 5 60 "$node" test/bench/dist/device-smoke.js --bundles "$kit/bench/bundles" 2>&1 | tee -a "$facts"
[ "${PIPESTATUS[0]}" = 0 ] || fail "smoke check (above): the bench cannot run here as built; nothing measured"
say "smoke check passed at $(since)"

say "== bench (no step starts after ${budget} s; stopped at $((budget + 90)) s; first: $first)"
machine="the borrowed machine: ${cpu:-unknown CPU}, $cores cores, ${memory:-?} of memory, $kernel; run by test/bench/device/run.sh with the kit's modules and prebuilt bundles ($(cut -d'(' -f1 "$kit/stamp.txt" 2>/dev/null | sed 's/ *$//'))"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
timeout -k 10 $((budget + 90)) "$node" test/bench/dist/run.js --no-write --first "$first" \
  --budget "$budget" --bundles "$kit/bench/bundles" --report "$out/generated.md" \
  --raw "$out/raw.jsonl" --machine "$machine" ${BENCH_ARGS:-} >"$out/bench.log" 2>&1
status=$?
case $status in
0) say "bench done at $(since)" ;;
124 | 137) say "bench STOPPED at $(since) after $((budget + 90)) s: generated.md holds the steps that finished" ;;
*) say "bench FAILED (exit $status) at $(since): see the end of bench.log; generated.md holds the steps that finished" ;;
esac
tail -n 3 "$out/bench.log" | tee -a "$facts"

if [ -s "$out/generated.md" ]; then
  bash test/bench/device/splice.sh "$out/generated.md" BENCHMARKS.md >"$out/BENCHMARKS.md"
  say "BENCHMARKS.md written ($(grep -c '^### ' "$out/generated.md") tables) at $(since)"
fi
rm -rf "$work"
exit "$status"
